"""The erasers, one module each: a module here that defines ``SPEC`` (an ``EraserSpec``) is an
eraser of ``workbench erase --method``, of ``make_edit`` and of the robustness grid, with nothing
else to change; another package adds one through the entry point group ``workbench.erasers``
(docs/plugins.md). Modules here import no torch at the top (the CLI's --help reads the registry).

An ``EraserSpec`` holds the name, a line of help, the options dataclass, the edit files it writes
(``masks``, ``weights``, ``features``), its settings in the robustness grid (``Setting``s per grid size), and
``run(pipe, concept, options, run, info) -> Edit``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...registry import Registry

if TYPE_CHECKING:
    from ..edits import Edit

MASKS, WEIGHTS, FEATURES = "masks.safetensors", "weights.safetensors", "features.safetensors"
#: the grid sizes a spec gives settings for: a smoke run, one or two settings per eraser, the full sweep
SIZES = ("quick", "core", "full")


@dataclass(frozen=True)
class Setting:
    """One point of an eraser's strength knob in the robustness grid: its options and its label
    ('k=10%', 'lr=0.0001'). ``main``: the setting the attacks run on and the other seeds repeat;
    ``column``: shown in the other concepts' overview table; ``controls``: random masks of its
    size are drawn beside it; ``repeat``: 'always' (every seed of the core grid), 'every' (with
    ``--every-eraser``) or 'never' (deterministic erasers: one seed)."""

    options: dict
    label: str
    main: bool = False
    column: bool = False
    controls: bool = False
    repeat: str = "always"
    #: a variant's row name ('esd+preserve'), the rows it is read against, whether every seed runs it
    #: ('every') or the first ('first'), and its name in the attack table when it is attacked
    name: str = ""
    bases: tuple[str, ...] = ()
    seeds: str = "first"
    attacked: str = ""


@dataclass(frozen=True)
class EraserSpec:
    """One eraser (module docstring)."""

    name: str
    help: str
    options: type
    run: Callable[..., Edit]
    files: tuple[str, ...] = (MASKS,)
    settings: Callable[[str, int], list[Setting]] = field(default=lambda size, iterations: [])
    #: its variants for ``--variants`` (other options beside its sweep, rows of their own): ``variants(quick,
    #: iterations)``
    variants: Callable[[bool, int], list[Setting]] = field(default=lambda quick, iterations: [])
    #: how the attack table and pages name its main setting ('esd-x lr=1e-4'); default: name and label
    title: Callable[[Setting], str] | None = None
    #: the reference code's settings, used on any model that states none of its own (``eraser_defaults``
    #: on the pipeline class: the toy world's are in models/toyworld/pipeline.py)
    reference: dict = field(default_factory=dict)
    #: the erasers its paper claims it erases more than at matched harm (the robustness page tests each)
    claims: tuple[str, ...] = ()
    seeded: bool = True  # False: the same edit whatever the seed (ConceptPrune): one cell, seed 0
    order: int = 100  # its place in grids and tables (plugins: after the built-ins)

    def display(self, s: Setting) -> str:
        return self.title(s) if self.title is not None else f"{self.name} {s.label}"

    def grid(self, size: str, iterations: int) -> list[Setting]:
        """Its settings in a grid of ``size`` (``SIZES``) whose trained cells run ``iterations``."""
        return list(self.settings(size, iterations))


ERASERS: Registry[EraserSpec] = Registry("eraser", "workbench.erasers", __name__)


def main_setting(spec: EraserSpec, iterations: int = 200) -> Setting | None:
    """The setting of ``spec`` that attacks run on (its core grid's ``main``), if it has one."""
    return next((s for s in spec.grid("core", iterations) if s.main), None)


__all__ = ["ERASERS", "FEATURES", "MASKS", "SIZES", "WEIGHTS", "EraserSpec", "Setting", "main_setting"]
