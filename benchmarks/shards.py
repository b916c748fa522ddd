"""Sharded recording throughput on the toy world: one `workbench record` process against 2 and 4
processes with --shard i/N filling one store, the same prompts, steps and batch size, in one run.

    python benchmarks/shards.py [--prompts texture:striped texture:dotted] [--steps 25] [--batch-size 8]

Each row is wall-clock seconds from starting the processes to the store marked complete, so it
includes every process's start-up (importing torch and diffusers, loading the model) and the
planning step (the first chunk, recorded by the first shard before the others write). The
unsharded row is today's single writer; `--shard 0/1` is the same code path. Threads per process:
the cores divided among the processes (torchrun's habit is 1), so N processes share one machine
fairly; the rows say how many.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(out: Path, shards: int, args) -> float:
    cores = os.cpu_count() or 1
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // shards))}
    base = [sys.executable, "-m", "workbench", "record", "--model", "toy", "--prompts", *args.prompts, "--steps",
            str(args.steps), "--batch-size", str(args.batch_size), "--quiet", "--out", str(out)]  # fmt: skip
    t = time.perf_counter()
    cmds = [base] if shards == 1 else [[*base, "--shard", f"{i}/{shards}"] for i in range(shards)]
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in cmds]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(p.stderr.read())
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", nargs="+", default=["texture:striped", "texture:dotted"])
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    from workbench.store import open_store

    root = Path(tempfile.mkdtemp(prefix="shards-"))
    try:
        rows = []
        for n in args.processes:
            out = root / f"p{n}.zarr"
            seconds = run(out, n, args)
            tree = open_store(out)
            assert tree.attrs["complete"]
            rows.append((n, seconds, tree.sizes["prompt"]))
        cores = os.cpu_count()
        print(f"toy world, {args.steps} steps, batch {args.batch_size}, {cores} cores")
        print("| processes | threads each | prompts | seconds | prompts/s | vs 1 process |")
        print("| --- | --- | --- | --- | --- | --- |")
        for n, s, p in rows:
            print(f"| {n} | {max(1, cores // n)} | {p} | {s:.1f} | {p / s:.2f} | {rows[0][1] / s:.2f}x |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
