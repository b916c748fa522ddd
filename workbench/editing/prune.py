"""Apply masks to a loaded pipeline: reversibly (bit-exact restore) or for export.

A mask for a site has the shape of that site's weight (its Linear's, or the neurons' column slice of
it: ``models.sites.weight_of``); pruning sets W <- W * (1 - M) there and nowhere else.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from ..models.sites import catalogue, weight_of
from ..store import accessor  # noqa: F401  (``masks.wb``)

MaskLike = xr.DataTree | dict


def as_dict(masks: MaskLike) -> dict[str, np.ndarray]:
    """{site: bool array} from a mask DataTree (analysis output) or a plain dict."""
    if isinstance(masks, xr.DataTree):
        return masks.wb.masks()
    return {s: np.asarray(m, dtype=bool) for s, m in masks.items()}


class Pruner:
    """Zeroes the masked weights; ``restore()`` puts the saved originals back exactly."""

    def __init__(self, pipe, masks: MaskLike):
        self.pipe = pipe
        self.masks = as_dict(masks)
        by_name = {s.name: s for s in catalogue(pipe)}
        self._targets = []
        for name, m in self.masks.items():
            if name not in by_name:
                raise ValueError(f"the model has no site {name}: were these masks computed for another model?")
            w = weight_of(pipe, by_name[name])
            if tuple(w.shape) != m.shape:
                raise ValueError(f"mask for {name} has shape {m.shape}, the weight {tuple(w.shape)}: another model?")
            self._targets.append((w, torch.from_numpy(m).to(w.device)))
        self._saved: list[torch.Tensor] | None = None

    @property
    def applied(self) -> bool:
        return self._saved is not None

    @torch.no_grad()
    def apply(self) -> Pruner:
        if self.applied:
            raise RuntimeError("masks already applied: restore() first")
        self._saved = [w[m].clone() for w, m in self._targets]
        for w, m in self._targets:
            w[m] = 0
        return self

    @torch.no_grad()
    def restore(self) -> None:
        if not self.applied:
            return
        for (w, m), saved in zip(self._targets, self._saved):
            w[m] = saved
        self._saved = None

    def count(self) -> int:
        return int(sum(int(m.sum()) for _, m in self._targets))


@contextmanager
def pruned(pipe, masks: MaskLike):
    """``with pruned(pipe, masks): pipe(...)``: the weights come back on every exit path."""
    p = Pruner(pipe, masks).apply()
    try:
        yield p
    finally:
        p.restore()


def random_like(masks: MaskLike, seed: int = 0) -> dict[str, np.ndarray]:
    """A random control: per row, as many entries as the given mask, at random positions."""
    rng = np.random.default_rng(seed)
    out = {}
    for s, m in as_dict(masks).items():
        r = np.zeros_like(m)
        for i, n in enumerate(m.sum(1)):
            if n:
                r[i, rng.choice(m.shape[1], size=int(n), replace=False)] = True
        out[s] = r
    return out


def export_pruned(pipe, masks: MaskLike, folder: str | Path) -> Path:
    """save_pretrained of the pruned pipeline, with the masks beside it as masks.safetensors."""
    from safetensors.torch import save_file

    folder = Path(folder)
    with pruned(pipe, masks):
        pipe.save_pretrained(folder)
    save_file(
        {s: torch.from_numpy(np.ascontiguousarray(m)) for s, m in as_dict(masks).items()}, str(folder / "masks.safetensors")
    )
    return folder
