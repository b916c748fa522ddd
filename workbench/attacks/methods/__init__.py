"""The attacks, registered by name: a module here that defines ``SPEC`` or ``SPECS``
(``AttackSpec``) is an attack of ``workbench attack --attack``, of ``attacks.attack`` and of the
robustness page's attack table, with nothing else to change; another package adds one through the
entry point group ``workbench.attacks`` (docs/plugins.md). Modules here import no torch at the
top (the CLI's --help reads the registry).

An ``AttackSpec`` holds the name, a line of help, its options dataclass (``workbench attack``'s
flags come from its fields), its default budget and what the budget counts,
whether it changes the prompt or the weights, what it needs (the unedited model's trajectories as
its loss's examples; the concept's held-out routes), and ``run(attempt) -> (after, adversarial)``:
``after`` the judge's verdict per target prompt under attack, ``adversarial`` the attacked prompt
as text. ``Attempt`` carries what every attack gets.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...registry import Registry

#: what an attack changes: the prompt (adversarial text or embeddings) or the edited model's weights
CHANGES = ("prompt", "weights")
#: the fractions of the budget where an attack that keeps a curve is judged (ASR against budget)
CURVE = (0.25, 0.5, 1.0)


@dataclass(frozen=True)
class NoOptions:
    """The options of an attack that takes none besides its budget."""


@dataclass
class Attempt:
    """One attack's inputs and what it leaves besides its verdicts: ``info`` (kept in result.json)
    and ``tensors`` (adversarial.safetensors). ``shown(images, prompts)`` is the judge's verdicts;
    ``examples`` the unedited model's trajectories of the target prompts (None where the spec needs
    none)."""

    pipe: Any
    concept: Any
    edit: Any
    targets: list
    shown: Callable
    examples: Any
    budget: int
    seed: int = 0
    options: Any = None  # the attack's options dataclass, checked (``AttackSpec.options``)
    steps: int = 25
    guidance: float = 1.5
    progress: bool = False
    out: Any = None
    info: dict = field(default_factory=dict)
    tensors: dict = field(default_factory=dict)
    #: budget checkpoint -> the judge's verdict per target prompt there, for attacks that keep a curve
    curve: dict = field(default_factory=dict)

    @property
    def texts(self) -> list[str]:
        return [p.text for p in self.targets]

    @property
    def seeds(self) -> list[int]:
        return [p.seed for p in self.targets]


@dataclass(frozen=True)
class AttackSpec:
    """One attack (module docstring)."""

    name: str
    help: str
    run: Callable[[Attempt], tuple[list[bool], list[str]]]
    options: type = NoOptions
    budget: int = 100
    unit: str = "optimiser steps"
    changes: str = "prompt"
    examples: bool = True  # needs the unedited model's trajectories of the target prompts
    routes: bool = False  # needs the concept's held-out routes (the language world's concepts)
    #: how the language world's page reads its runs ('' : not read there)
    reading: str = ""
    #: the attack whose runs the reactivation analysis records (the P-ESD paper's Fig. 3: UnlearnDiffAtk)
    reactivation: bool = False
    #: the attack a benchmark runs when none is named (``main_attack``)
    main: bool = False
    order: int = 100


def runner(target: str, **bound) -> Callable[[Attempt], tuple]:
    """``run`` of a spec whose code lives in a torch module: 'module:function', called as
    ``function(attempt, **bound)`` and imported on first call."""

    def run(attempt: Attempt):
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)(attempt, **bound)

    run.__qualname__ = f"runner({target!r})"
    return run


ATTACKS: Registry[AttackSpec] = Registry("attack", "workbench.attacks", __name__)


def main_attack() -> str:
    """The attack ``workbench benchmark`` runs unless told another (the spec marked ``main``; else the first)."""
    return next((s.name for s in ATTACKS.specs() if s.main), next(iter(ATTACKS)))


def reactivation_attack() -> str | None:
    """The attack whose runs the reactivation analysis records, if one is registered."""
    return next((s.name for s in ATTACKS.specs() if s.reactivation), None)


__all__ = ["ATTACKS", "CHANGES", "CURVE", "AttackSpec", "Attempt", "NoOptions", "main_attack", "reactivation_attack", "runner"]
