"""Prompt sets: what a recording runs over. The bottom layer: plain data, no model, no store.

A :class:`PromptSet` is a list of prompts, each with the name of the set it belongs to and the
seed of its initial noise. Target and reference prompts made from the same filler share a seed,
so P* and P start from the same noise, as the paper fixes the seed before every prompt.

Named sets come from providers: the paper's Table 9 (:mod:`workbench.prompts.paper`) and any
installed package that declares an entry point in the group ``workbench.prompt_sets`` (the toy
world does, in pyproject.toml). A provider is a module with ``named_sets() -> {name: what}`` and
``get(name, seed) -> PromptSet | None`` (None: not one of its names).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ENTRY_POINTS = "workbench.prompt_sets"


@dataclass(frozen=True)
class Prompt:
    text: str
    set: str
    seed: int


@dataclass
class PromptSet:
    """An ordered list of prompts; ``+`` concatenates sets."""

    prompts: list[Prompt] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prompts)

    def __iter__(self):
        return iter(self.prompts)

    def __add__(self, other: PromptSet) -> PromptSet:
        return PromptSet(self.prompts + other.prompts)

    @property
    def sets(self) -> list[str]:
        return list(dict.fromkeys(p.set for p in self.prompts))

    def only(self, name: str) -> PromptSet:
        return PromptSet([p for p in self.prompts if p.set == name])


def paired(target: list[str], reference: list[str], target_set: str, reference_set: str, seed: int = 0) -> PromptSet:
    """Target and reference prompts, the i-th of each sharing the seed ``seed + i``."""
    if len(target) != len(reference):
        raise ValueError(f"paired sets need equal lengths, got {len(target)} targets and {len(reference)} references")
    t = [Prompt(x, target_set, seed + i) for i, x in enumerate(target)]
    r = [Prompt(x, reference_set, seed + i) for i, x in enumerate(reference)]
    return PromptSet(t + r)


@cache
def providers() -> tuple:
    """The modules that name prompt sets: the paper's, then every installed entry point's."""
    from importlib.metadata import entry_points

    mods = [importlib.import_module("workbench.prompts.paper")]
    for ep in sorted(entry_points(group=ENTRY_POINTS), key=lambda e: e.name):
        mods.append(importlib.import_module(ep.value))
    return tuple(mods)


def named_sets() -> dict[str, str]:
    """Every name ``get`` accepts, with what it makes."""
    out: dict[str, str] = {}
    for mod in providers():
        out.update(mod.named_sets())
    return out


def get(name: str, seed: int = 0) -> PromptSet:
    """A named calibration set (see ``named_sets()``) or a text file of prompts, one a line
    (``set<TAB>prompt`` lines name their set; others take the file's stem)."""
    path = Path(name)
    if path.suffix == ".txt" or path.exists():
        return from_file(path, seed)
    for mod in providers():
        found = mod.get(name, seed)
        if found is not None:
            return found
    raise ValueError(f"unknown prompt set {name!r}: use a file of prompts or one of: {', '.join(named_sets())}")


def from_file(path: str | Path, seed: int = 0) -> PromptSet:
    """Prompts from a text file, one a line; blank lines and lines starting with # are skipped.

    ``set<TAB>prompt`` lines name their set; other lines take the file's stem. Seeds follow the
    pairs: the i-th prompt of every set gets ``seed + i``, so a file holding a target set and its
    reference pairs them line for line, as two files (one set each) do. Sets of unequal size
    leave prompts without a partner, which a warning names."""
    import warnings

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"prompt file {path} does not exist: give a path to a text file with one prompt a line")
    out, position = [], {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        set_name, tab, text = line.partition("\t")
        if not tab:
            set_name, text = path.stem, line
        i = position[set_name] = position.get(set_name, -1) + 1
        out.append(Prompt(text.strip(), set_name.strip(), seed + i))
    if not out:
        raise ValueError(f"prompt file {path} holds no prompts: write one prompt a line")
    sizes = {s: i + 1 for s, i in position.items()}
    if len(set(sizes.values())) > 1:
        warnings.warn(
            f"prompt file {path}: sets of unequal size {sizes}; the i-th prompts of each set share a seed, "
            "so the extra prompts of the larger sets have no partner with the same noise",
            stacklevel=2,
        )
    return PromptSet(out)


__all__ = ["Prompt", "PromptSet", "from_file", "get", "named_sets", "paired", "providers"]
