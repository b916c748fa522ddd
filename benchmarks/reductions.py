"""The one pass over a whole raw store: writing its per-set reductions (SD 1.5 FFN-2 dims, synthetic).

    python benchmarks/reductions.py [--n 64] [--cluster 2]

Builds the synthetic store of benchmarks/masks.py (16 sites, 51 steps, two statistics, 2 x n
prompts, chunk 8) and times ``reduce_store`` on it: with dask's default (threaded) scheduler in
this process, and, with ``--cluster W``, on a ``dask.distributed`` LocalCluster of W worker
processes (the task count read back from the task stream). The bytes read are this process's
(rchar): on the cluster the workers read, not it. To time another version of the package, point
PYTHONPATH at its tree (the script only needs ``reduce_store``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from masks import build, rchar  # noqa: E402

from workbench.store import reduce_store  # noqa: E402


def timed(fn) -> tuple[float, float]:
    r0, t0 = rchar(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, (rchar() - r0) / 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=64, help="prompts per set (2 sets)")
    parser.add_argument("--cluster", type=int, default=0, help="also run on a LocalCluster of this many worker processes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.zarr"
        build(path, n=args.n)
        raw = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "reductions" not in f.parts) / 1e9
        print(f"store: 2 x {args.n} prompts, {raw:.2f} GB on disk")
        secs, read = timed(lambda: reduce_store(str(path)))
        print(f"reduce_store, this process: {secs:.1f} s, {read:,.0f} MB read here")
        if args.cluster:
            from dask.distributed import Client, LocalCluster, get_task_stream

            with LocalCluster(n_workers=args.cluster, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
                with Client(cluster), get_task_stream() as stream:
                    secs, read = timed(lambda: reduce_store(str(path)))
            print(
                f"reduce_store, LocalCluster of {args.cluster}: {secs:.1f} s, {read:,.0f} MB read here, {len(stream.data)} tasks on the workers"
            )


if __name__ == "__main__":
    main()
