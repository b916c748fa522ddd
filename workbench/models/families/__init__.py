"""Model families, registered by name: which component of a pipeline is the denoiser, which are
its text encoders, what its site families are (a glob over module paths per family) and which
parameters each fine-tuning group of the erasers means on it. A module here that defines ``SPEC``
(a ``ModelFamily``) is a family; another package adds one through the entry point group
``workbench.models`` (docs/plugins.md). ``family_of(pipe)`` finds the family of a loaded
pipeline: the first whose ``detect`` accepts it, in registry order. No torch at the top.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ...registry import Registry


@dataclass(frozen=True)
class ModelFamily:
    """One family of models (module docstring). ``sites``: family name -> (component kind, glob),
    the kind 'denoiser' or 'text'; ``groups``: an eraser's parameter group -> predicate on the
    denoiser's parameter names; ``default_site``: the family of sites the paper's method uses."""

    name: str
    help: str
    detect: Callable[[object], bool]
    denoiser: str
    text_encoders: tuple[str, ...]
    sites: dict[str, tuple[str, str]]
    groups: dict[str, Callable[[str], bool]] = field(default_factory=dict)
    default_site: str = "ffn2"
    order: int = 100


MODEL_FAMILIES: Registry[ModelFamily] = Registry("model family", "workbench.models", __name__)


def family_of(pipe) -> ModelFamily:
    """The registered family of ``pipe``; a clear error for a pipeline no family knows."""
    for spec in MODEL_FAMILIES.specs():
        if spec.detect(pipe):
            return spec
    raise ValueError(
        f"no registered model family knows a {type(pipe).__name__}: the families are {', '.join(MODEL_FAMILIES)} "
        "(a package can add one under the entry point group workbench.models: docs/plugins.md)"
    )


__all__ = ["MODEL_FAMILIES", "ModelFamily", "family_of"]
