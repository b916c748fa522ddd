"""Prompt rows of a group kept beside a recording (maps, token samples): appended, committed,
repaired after a kill, and marked done one prompt at a time.

A group has prompt-long arrays on one dimension (``map_prompt``, ``sample_prompt``): ``text``,
``set``, ``seed``, ``done`` and its data. ``attrs['n']`` counts the committed rows; a kill while
rows are being added leaves arrays longer than ``n``, which ``repair`` cuts back. A prompt's data is
written before its ``done`` flag, so a killed run resumes at the first prompt not done and writes
the same bytes an uninterrupted run writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import zarr


def store_root(store) -> zarr.Group:
    """A recording store's root group, writable; a clear error for a folder that is not one."""
    from pathlib import Path

    from .core import StoreError

    store = Path(store)
    if not (store / "zarr.json").exists():
        raise StoreError(f"{store} is not a recording store: record it first (`workbench record --out {store}`)")
    return zarr.open_group(str(store), mode="r+", use_consolidated=False)


def reopened(root: zarr.Group, key: str, want: dict, refuse: str) -> zarr.Group | None:
    """The whole group ``key`` if it was made with the attributes ``want`` (None if there is none);
    one made with others is refused: ``refuse`` is the message's start, the attributes that
    differ are appended after 'other'."""
    from .core import StoreError

    if not committed(root, key):
        return None
    group = root[key]
    diff = [k for k in want if group.attrs.get(k) != want[k]]
    if diff:
        head, _, fix = refuse.partition("{diff}")
        raise StoreError(head + ", ".join(diff) + fix)
    return group


def committed(root: zarr.Group, key: str) -> bool:
    """Whether ``root`` holds a whole group ``key`` (its attributes written, which is its creation's
    last step); a group a kill left half-made is removed, so it is made again from the start."""
    if key in root and "n" not in root[key].attrs:
        del root[key]
    return key in root


def create_prompt_arrays(group: zarr.Group, dim: str) -> None:
    """The prompt-long ``text``, ``set``, ``seed`` and ``done`` arrays of a new group."""
    for arr, dtype in (("text", str), ("set", str), ("seed", "int64"), ("done", "bool")):
        fill = "" if dtype is str else (False if dtype == "bool" else 0)
        group.create_array(
            arr, shape=(0,), chunks=(1 if arr == "done" else 1024,), dtype=dtype, dimension_names=[dim], fill_value=fill
        )


@dataclass
class PromptRows:
    """The rows of one group; subclasses name their prompt-long data arrays (``data_arrays``)."""

    group: zarr.Group

    def data_arrays(self) -> Iterator[zarr.Array]:
        raise NotImplementedError

    def _arrays(self) -> Iterator[zarr.Array]:
        for name in ("text", "set", "seed", "done"):
            yield self.group[name]
        yield from self.data_arrays()

    def repair(self) -> None:
        """Undo an interrupted extension: every prompt-long array back to the committed rows."""
        n = int(self.group.attrs["n"])
        for arr in self._arrays():
            if arr.shape[0] != n:
                arr.resize((n, *arr.shape[1:]))

    def rows(self, prompts) -> list[int]:
        """The rows of ``prompts`` (text, set, seed), appending the ones not yet here."""
        n = int(self.group.attrs["n"])
        have = {}
        if n:
            keys = zip(self.group["text"][:n], self.group["set"][:n], self.group["seed"][:n])
            have = {(str(t), str(s), int(d)): i for i, (t, s, d) in enumerate(keys)}
        new = [p for p in dict.fromkeys((p.text, p.set, int(p.seed)) for p in prompts) if p not in have]
        if new:
            m = n + len(new)
            for arr in self._arrays():
                arr.resize((m, *arr.shape[1:]))
            self.group["text"][n:m] = np.array([t for t, _, _ in new], dtype=object)
            self.group["set"][n:m] = np.array([s for _, s, _ in new], dtype=object)
            self.group["seed"][n:m] = np.array([d for _, _, d in new], dtype=np.int64)
            self.group.attrs["n"] = m  # last: commits the new rows
            have.update({k: n + i for i, k in enumerate(new)})
        return [have[(p.text, p.set, int(p.seed))] for p in prompts]

    def done(self) -> np.ndarray:
        return self.group["done"][: int(self.group.attrs["n"])]
