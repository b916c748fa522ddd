"""Plain Zarr region writes (what workbench does) against Icechunk sessions forked to writers and
merged by one commit: N writer processes fill one recording-shaped store, side by side in one run.

    python benchmarks/store_backends.py [--prompts 256] [--writers 1 2 4]

Data: the toy world's 7 FFN-2 sites (widths 384/768), 2 statistics, 2 CFG branches, 25 steps,
float32, chunks of 8 prompts, random values (compressed like real ones: zstd, no structure). Each
writer owns chunks c with c % N == i, as `workbench record --shard i/N` does. Printed per backend
and N: seconds, prompts/s, bytes and files on disk; then what a writer killed half-way leaves:
how many prompts the store shows as recorded, how many must be redone, and the bytes orphaned.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

SITES = [384, 768, 768, 768, 384, 384, 768]
STATS, BRANCHES, STEPS, CHUNK = 2, 2, 25, 8


def make_arrays(group: zarr.Group, n: int) -> None:
    group.create_array("done", shape=(n,), chunks=(CHUNK,), dtype="bool", fill_value=False)
    for s, width in enumerate(SITES):
        for k in range(STATS):
            group.create_array(
                f"site{s}/stat{k}", shape=(n, BRANCHES, STEPS, width), chunks=(CHUNK, BRANCHES, STEPS, min(width, 1024)),
                dtype="float32", fill_value=float("nan"),
            )  # fmt: skip


def fill(group: zarr.Group, n: int, shard: int, shards: int, die_after: int | None = None) -> None:
    rng = np.random.default_rng(shard)
    written = 0
    for c in range(shard, -(-n // CHUNK), shards):
        lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
        for s, width in enumerate(SITES):
            for k in range(STATS):
                group[f"site{s}/stat{k}"][lo:hi] = rng.random((hi - lo, BRANCHES, STEPS, width), dtype=np.float32)
        group["done"][lo:hi] = True
        written += 1
        if die_after is not None and written == die_after:
            os._exit(9)  # killed half-way


def zarr_writer(path: str, n: int, shard: int, shards: int, die_after: int | None) -> None:
    fill(zarr.open_group(path, mode="r+"), n, shard, shards, die_after)


def icechunk_writer(fork, n: int, shard: int, shards: int, die_after: int | None, out) -> None:
    fill(zarr.open_group(fork.store, mode="r+"), n, shard, shards, die_after)
    out.put((shard, fork))


def du(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def run_zarr(root: Path, n: int, shards: int, kill: bool) -> dict:
    path = root / f"zarr-{shards}-{kill}.zarr"
    make_arrays(zarr.open_group(str(path), mode="w", zarr_format=3), n)
    t = time.perf_counter()
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=zarr_writer, args=(str(path), n, i, shards, 2 if kill and i == 0 else None)) for i in range(shards)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - t
    done = zarr.open_group(str(path), mode="r")["done"][:]
    size, files = du(path)
    # a killed writer's half-written chunk is invisible (its done flags unset) and rewritten on resume
    return {"seconds": seconds, "bytes": size, "files": files, "recorded": int(done.sum()), "redo": int((~done).sum())}


def run_icechunk(root: Path, n: int, shards: int, kill: bool) -> dict:
    import icechunk

    path = root / f"ice-{shards}-{kill}"
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(path)))
    session = repo.writable_session("main")
    make_arrays(zarr.open_group(session.store, mode="w", zarr_format=3), n)
    session.commit("plan: every array")
    t = time.perf_counter()
    session = repo.writable_session("main")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    forks = [session.fork() for _ in range(shards)]
    procs = [ctx.Process(target=icechunk_writer, args=(forks[i], n, i, shards, 2 if kill and i == 0 else None, out))
             for i in range(shards)]  # fmt: skip
    for p in procs:
        p.start()
    results = [out.get()[1] for _ in range(shards - (1 if kill else 0))]  # read before join: queues hold pickles
    for p in procs:
        p.join()
    session.merge(*results)  # a killed writer returned nothing: its chunks are never merged
    session.commit("record")
    seconds = time.perf_counter() - t
    done = zarr.open_group(repo.readonly_session("main").store, mode="r")["done"][:]
    size, files = du(path)
    return {"seconds": seconds, "bytes": size, "files": files, "recorded": int(done.sum()), "redo": int((~done).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--writers", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    n = args.prompts
    root = Path(tempfile.mkdtemp(prefix="backends-"))
    try:
        print(f"{n} prompts, {os.cpu_count()} cores; each row includes starting the writer processes")
        print("| backend | writers | seconds | prompts/s | MB on disk | files |")
        print("| --- | --- | --- | --- | --- | --- |")
        base = {}
        for shards in args.writers:
            for name, fn in (("zarr regions", run_zarr), ("icechunk fork/merge", run_icechunk)):
                r = fn(root, n, shards, False)
                base.setdefault(name, r)
                print(
                    f"| {name} | {shards} | {r['seconds']:.2f} | {n / r['seconds']:.0f} | {r['bytes'] / 1e6:.1f} | {r['files']} |"
                )
        print("\nwriter 0 of 2 killed after its 2nd chunk:")
        print("| backend | prompts recorded | prompts to redo | MB on disk | orphaned MB (on disk, not in the store) |")
        print("| --- | --- | --- | --- | --- |")
        for name, fn in (("zarr regions", run_zarr), ("icechunk fork/merge", run_icechunk)):
            r = fn(root, n, 2, True)
            full = base[name]["bytes"]
            kept = full * r["recorded"] / n
            print(
                f"| {name} | {r['recorded']} | {r['redo']} | {r['bytes'] / 1e6:.1f} | {max(0.0, r['bytes'] - kept) / 1e6:.1f} |"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
