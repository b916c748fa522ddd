"""Mask computation at SD1.5 FFN-2 scale on a synthetic store (16 sites, 49.5 M weights, 51 steps).

    python benchmarks/masks.py [--s3]

Side by side in one process: one concept's masks (k=2, t_hat=10) and a 5 k x 15 t_hat sweep,
read from the raw statistics and from the store's per-set reductions, with the bytes each read
(the process's read() bytes, /proc/self/io rchar) against the bytes the reductions they need hold;
the seconds to write the reductions; files per 10k prompts, counted on the store made here; and,
with --s3, the same masks from a copy on a local S3 server (moto) against local disk.
The store holds random positive statistics for 2 x 8 prompts; the weights are random normals.
"""

from __future__ import annotations

import argparse
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
from workbench.recording import Recording
from workbench.store import StoreWriter, open_store, reduce_store

WIDTHS = [(1280, 320)] * 5 + [(2560, 640)] * 5 + [(5120, 1280)] * 6
STEPS = 51
T_HAT = 10


def build(path: Path, n: int = 8, chunk: int = 8):
    sites = [Site(f"s{i}.ff.net.2", "ffn2", "unet", f"s{i}.ff.net.2", w) for i, (w, _) in enumerate(WIDTHS)]
    w = StoreWriter.open(path, {"model_id": "synthetic"}, sites, ("sumsq", "sumsq_unit"), chunk=chunk)
    w.reduce = False  # timed on its own below
    idx = w.add_prompts(
        PromptSet([Prompt(f"t{i}", "target", i) for i in range(n)] + [Prompt(f"r{i}", "reference", i) for i in range(n)])
    )
    rng = np.random.default_rng(0)
    for lo in range(0, 2 * n, chunk):
        stats = {
            s.name: {k: rng.gamma(2.0, 50.0, (chunk, 2, STEPS, s.width)).astype(np.float32) for k in ("sumsq", "sumsq_unit")}
            for s in sites
        }
        w.write(idx[lo : lo + chunk], Recording(stats, list(range(STEPS)), {}, ("uncond", "cond")))
    w.finish()
    weights = {s.name: rng.standard_normal((o, wd), dtype=np.float32) for s, (wd, o) in zip(sites, WIDTHS)}
    return weights


def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def measured(fn):
    b, t = rchar(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t, rchar() - b


def same(a, b) -> bool:
    return all((a[s]["mask"].values == b[s]["mask"].values).all() for s in a.attrs["sites"])


def files_per_10k(path: Path, n_prompts: int, chunk: int) -> tuple[int, int]:
    """(raw statistics + done flags, reductions per 10 sets) files per 10k prompts, counted here:
    the chunk files of the sites and of ``done`` scale with the prompt chunks; the other prompt
    arrays (4096 rows a chunk) add 3 files each, the step and branch axes one each."""
    per_chunk = [p for p in path.rglob("*") if p.is_file() and "/c/" in p.as_posix() and p.parts[len(path.parts)] != "reductions"
                 and p.parts[len(path.parts)] not in ("prompt", "seed", "text", "set", "step", "timestep", "branch")]  # fmt: skip
    red = [p for p in (path / "reductions").rglob("*") if p.is_file() and "/c/" in p.as_posix()]
    chunks = n_prompts / chunk
    return round(len(per_chunk) / chunks * 10_000 / chunk) + 4 * 3 + 3, round(len(red) / 2 * 10)


def s3_masks(path: Path, weights, local_masks) -> None:
    import os
    import socket
    import subprocess
    import sys

    from workbench.store import push

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")  # fmt: skip
    try:
        time.sleep(3)
        import s3fs

        s3fs.S3FileSystem().mkdir("bench")
        t = time.perf_counter()
        push(path, "s3://bench/s.zarr")
        print(f"push to the S3 server: {time.perf_counter() - t:.1f} s")
        tree = open_store("s3://bench/s.zarr")
        m, secs, _ = measured(lambda: concept_masks(tree, weights, "target", "reference", k=2, t_hat=T_HAT))
        print(f"one concept from s3:// (reductions): {secs:.2f} s; same masks as local disk: {same(m, local_masks)}")
        raw = tree.drop_nodes("reductions")
        m, secs, _ = measured(lambda: concept_masks(raw, weights, "target", "reference", k=2, t_hat=T_HAT))
        print(f"one concept from s3:// (raw statistics): {secs:.2f} s; same masks: {same(m, local_masks)}")
    finally:
        proc.terminate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--s3", action="store_true", help="also read the store from a local moto S3 server")
    ap.add_argument("--prompts", type=int, default=8, help="prompts per set (a multiple of 8; 8 is the figure in RESULTS.md)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp())
    path = tmp / "s.zarr"
    weights = build(path, args.prompts)
    print(
        f"{sum(w.size for w in weights.values()) / 1e6:.1f} M weights in {len(weights)} sites, {STEPS} steps, 2 sets x {args.prompts} prompts"
    )
    _, secs, read = measured(lambda: reduce_store(str(path)))
    print(f"writing the per-set reductions: {secs:.1f} s, {read / 1e6:.0f} MB read")
    t = time.perf_counter()
    tree = open_store(path)
    print(f"open_store (metadata, and the integrity check's listing of every array's chunks): {time.perf_counter() - t:.2f} s")
    raw = tree.drop_nodes("reductions")
    need = sum(2 * T_HAT * w * 8 for w, _ in WIDTHS)  # two sets, the cond branch, t_hat steps, float64
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = []
    for name, t_ in (("raw statistics", raw), ("reductions", tree)):
        m, secs, read = measured(lambda t_=t_: concept_masks(t_, weights, "target", "reference", k=2, t_hat=T_HAT))
        rows.append((name, m, secs, read))
        print(f"one concept, k=2, t_hat={T_HAT}, from the {name}: {secs:.2f} s, {read / 1e6:.1f} MB read "
              f"({read / need:.2f}x the {need / 1e6:.1f} MB of sums it needs); density {float(density(m)['overall']):.4f}")  # fmt: skip
    print(
        f"same masks both ways: {same(rows[0][1], rows[1][1])}; speed-up {rows[0][2] / rows[1][2]:.1f}x, bytes {rows[0][3] / rows[1][3]:.1f}x fewer"
    )
    for name, t_ in (("raw statistics", raw), ("reductions", tree)):
        sw, secs, read = measured(
            lambda t_=t_: sweep(t_, weights, "target", "reference", ks=[0.5, 1, 2, 5, 10], t_hats=list(range(1, 16)))
        )
        print(f"5 k x 15 t_hat sweep from the {name}: {secs:.1f} s, {read / 1e6:.1f} MB read; "
              f"density at k=2, t_hat=10: {float(sweep_density(sw).sel(k=2.0, t_hat=10)):.4f}")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak / 1024:.2f} GB ({rss0 / 1024:.2f} GB before the masks, weights included)")
    raw_files, red_files = files_per_10k(path, 2 * args.prompts, 8)
    print(
        f"files per 10k prompts (chunk 8): {raw_files} raw statistics and done flags; reductions: {red_files} per 10 prompt sets"
    )
    if args.s3:
        s3_masks(path, weights, rows[1][1])
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
