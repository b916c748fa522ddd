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
class SiteSpec:
    """One site family: the Linears of a component kind ('denoiser' or 'text') whose module paths
    match ``glob``. ``columns``: where a Linear's input holds more than neurons, which input
    columns are the neurons ('tail': the last in_features - out_features, FLUX's single-stream
    ``proj_out`` over [attention output, MLP output]). ``tokens``: where the Linear sees its block's
    [text tokens, image tokens] concatenation (the block's ``encoder_hidden_states`` first, as
    FLUX's single-stream blocks do), which population this site keeps: 'image' or 'text'.
    ``output``: the site is a block's *output* (its residual stream, SAeUron's site), not a
    Linear's input; ``glob`` then matches block lists, and the sites are their numbered items
    (``<list>.0``, ``<list>.1``, ...); its width is the block's FFN output width, and it has no weight of its own:
    it is recorded, sampled and given SAEs, never pruned."""

    kind: str
    glob: str
    columns: str | None = None
    tokens: str | None = None
    help: str = ""
    output: bool = False


@dataclass(frozen=True)
class ModelFamily:
    """One family of models (module docstring). ``sites``: family name -> its ``SiteSpec``;
    ``groups``: an eraser's parameter group -> predicate on the denoiser's parameter names;
    ``default_site``: the site families the paper's method uses on it; ``distilled``: guidance is
    an embedding (FLUX.1-dev): one denoiser call per step, one branch; ``defaults``: its sampling
    steps and guidance; ``call``: extra keyword arguments its pipeline needs for our runs;
    ``timestep_scale``: what the denoiser's timestep argument is multiplied by to give the
    scheduler's timestep (FLUX's pipeline passes t / 1000); ``flow``: a flow-matching model
    (velocity prediction on x_t = (1 - s) x0 + s noise)."""

    name: str
    help: str
    detect: Callable[[object], bool]
    denoiser: str
    text_encoders: tuple[str, ...]
    sites: dict[str, SiteSpec]
    groups: dict[str, Callable[[str], bool]] = field(default_factory=dict)
    default_site: str | tuple[str, ...] = "ffn2"
    distilled: Callable[[object], bool] = lambda pipe: False
    defaults: dict = field(default_factory=lambda: {"guidance": 7.5, "steps": 50})
    call: dict | Callable[[object], dict] = field(default_factory=dict)
    timestep_scale: float = 1.0
    flow: bool = False
    #: (keys, values): suffixes of the denoiser's Linears whose input is the text conditioning (UCE
    #: edits them); None where the prompt enters through joint attention only
    text_projections: tuple[str, str] | None = ("attn2.to_k", "attn2.to_v")
    #: the text encoder and tokenizer whose token embeddings the attacks' slots replace
    slots: tuple[str, str] | Callable[[object], tuple[str, str]] = ("text_encoder", "tokenizer")
    #: ``encode(pipe, texts) -> (context, added)``: the denoiser's conditioning of prompts, differentiable
    #: through the slots' encoder (``added``: per-row inputs it replaces, e.g. the pooled projection)
    encode: Callable | None = None
    #: the site feature ablation uses by default (SAeUron's on SD 1.5); None: the middle block output
    sae_site: str | None = None
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


def call_options(pipe) -> dict:
    """The extra keyword arguments the pipeline's family gives its generation calls."""
    call = family_of(pipe).call
    return dict(call(pipe) if callable(call) else call)


def denoiser_of(pipe):
    """The pipeline's denoiser module (``pipe.unet``, ``pipe.transformer``), by its family."""
    return getattr(pipe, family_of(pipe).denoiser)


def transformer_class_is(*names: str) -> Callable[[object], bool]:
    """A ``detect`` for pipelines whose ``transformer`` is (a subclass of) one of these classes."""

    def detect(pipe) -> bool:
        t = getattr(pipe, "transformer", None)
        return t is not None and any(c.__name__ in names for c in type(t).__mro__)

    return detect


__all__ = ["MODEL_FAMILIES", "ModelFamily", "SiteSpec", "call_options", "denoiser_of", "family_of", "transformer_class_is"]
