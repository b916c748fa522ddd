"""Mask computation at SD1.5 FFN-2 scale on a synthetic store (16 sites, 49.5 M weights, 51 steps).

    python benchmarks/masks.py

Prints the time for one concept at t_hat=10, for a 5 k x 15 t_hat sweep, and the peak RSS.
The store holds random positive statistics for 2 x 8 prompts; the weights are random normals.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from workbench.analysis import concept_masks, density, sweep, sweep_density
from workbench.models.sites import Site
from workbench.prompts import Prompt, PromptSet
from workbench.store import Recording, StoreWriter, open_store

WIDTHS = [(1280, 320)] * 5 + [(2560, 640)] * 5 + [(5120, 1280)] * 6
STEPS = 51


def build(path: Path, n: int = 8):
    sites = [Site(f"s{i}.ff.net.2", "ffn2", "unet", f"s{i}.ff.net.2", w) for i, (w, _) in enumerate(WIDTHS)]
    w = StoreWriter.open(path, {"model_id": "synthetic"}, sites, ("sumsq", "sumsq_unit"), chunk=n)
    idx = w.add_prompts(
        PromptSet([Prompt(f"t{i}", "target", i) for i in range(n)] + [Prompt(f"r{i}", "reference", i) for i in range(n)])
    )
    rng = np.random.default_rng(0)
    for lo in range(0, 2 * n, n):
        stats = {
            s.name: {
                k: torch.from_numpy(rng.gamma(2.0, 50.0, (n, 2, STEPS, s.width)).astype(np.float32))
                for k in ("sumsq", "sumsq_unit")
            }
            for s in sites
        }
        w.write(idx[lo : lo + n], Recording(stats, list(range(STEPS)), {}, ("uncond", "cond")))
    w.finish()
    weights = {s.name: rng.standard_normal((o, wd), dtype=np.float32) for s, (wd, o) in zip(sites, WIDTHS)}
    return weights


def main() -> None:
    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp())
    weights = build(tmp / "s.zarr")
    print(f"{sum(w.size for w in weights.values()) / 1e6:.1f} M weights in {len(weights)} sites, {STEPS} steps")
    t = time.perf_counter()
    tree = open_store(tmp / "s.zarr")
    print(f"open_store (reads metadata, lists every array's chunks for the integrity check): {time.perf_counter() - t:.2f} s")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    m = concept_masks(tree, weights, "target", "reference", k=2, t_hat=10)
    one = time.perf_counter() - t
    print(f"one concept, k=2, t_hat=10: {one:.1f} s (target <= 10 s); density {float(density(m)['overall']):.4f}")
    del m
    t = time.perf_counter()
    sw = sweep(tree, weights, "target", "reference", ks=[0.5, 1, 2, 5, 10], t_hats=list(range(1, 16)))
    many = time.perf_counter() - t
    print(
        f"5 k x 15 t_hat sweep: {many:.1f} s (target <= 60 s); density at k=2, t_hat=10: {float(sweep_density(sw).sel(k=2.0, t_hat=10)):.4f}"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak / 1024:.2f} GB (target <= 4 GB; {rss0 / 1024:.2f} GB before the masks, weights included)")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
