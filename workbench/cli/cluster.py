"""``--dask ADDRESS``: a grid command (robustness, benchmark, ablate) as tasks on a
``dask.distributed`` cluster. Each task is the same command as one shard (``--shard I/N``, the
protocol of ``store.shards``: its share of the cells first, then what a killed shard left), run in
a worker process; N is the number of workers that hold a ``GPU`` resource (else every worker), and
each task asks for one, so a GPU runs one task at a time. The cells land in the one work folder the
workers share; a task that dies is run again by dask (or by the command run again) and resumes from
the cells on disk; every task ends with the whole grid there, the page written once.

``local:N`` starts a ``LocalCluster`` of N worker processes on this machine (one ``GPU`` slot each;
on a machine with GPUs, task I uses GPU I modulo their number), otherwise ADDRESS is a scheduler's
(``tcp://host:8786``): start one worker per GPU, e.g. ``CUDA_VISIBLE_DEVICES=0 dask worker ADDRESS
--nworkers 1 --nthreads 1 --resources GPU=1``, on machines that see the work folder.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import uuid


def add_dask(parser: argparse.ArgumentParser) -> None:
    """The ``--dask`` flag of a grid command."""
    parser.add_argument("--dask", metavar="ADDRESS", default=None,
                        help="run the grid as tasks on a dask.distributed cluster: a scheduler's address (tcp://host:8786; "
                             "one worker per GPU with --resources GPU=1) or local:N (N worker processes here); one task "
                             "a worker, each a --shard of the grid, all in one work folder (pip install 'workbench[cluster]')")  # fmt: skip


def run_on_dask(args: argparse.Namespace) -> int:
    """The parsed command ``args`` as one shard task per worker on the cluster at ``args.dask``; 0
    when every task ended with 0, else a ValueError with what the failed ones said."""
    address = args.dask
    if getattr(args, "shard", None) is not None:
        raise ValueError("--dask makes the shards itself: leave out --shard")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ValueError("--dask needs dask.distributed: pip install 'workbench[cluster]' (or distributed)") from None
    with _client(address) as client:
        workers = client.scheduler_info()["workers"].values()
        gpus = sum(1 for w in workers if w.get("resources", {}).get("GPU"))
        n = gpus or len(workers)
        if n == 0:
            raise ValueError(f"the dask cluster at {address} has no workers: start some, then run again")
        run = uuid.uuid4().hex[:8]  # two commands on one scheduler never share a task
        futures = [client.submit(_task, args, i, n, key=f"workbench-{args.command}-{run}-shard-{i}-of-{n}", pure=False,
                                 resources={"GPU": 1} if gpus else None) for i in range(n)]  # fmt: skip
        results = client.gather(futures)
    failed = [f"shard {i}/{n}: {err.strip().splitlines()[-1] if err.strip() else f'exit {code}'}"
              for i, (code, err) in enumerate(results) if code != 0]  # fmt: skip
    if failed:
        raise ValueError("tasks failed on the cluster: " + "; ".join(failed) + ". Run the same command again: it resumes")
    print(f"{args.command}: {n} tasks on {address} done")
    return 0


@contextlib.contextmanager
def _client(address: str):
    """A client of the scheduler at ``address``, or of a LocalCluster for ``local:N``."""
    from distributed import Client, LocalCluster

    if not address.startswith("local:"):
        with Client(address) as client:
            yield client
        return
    try:
        n = int(address.split(":", 1)[1])
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"--dask {address}: give local:N with N >= 1 worker processes, or a scheduler's address")
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // n))
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, resources={"GPU": 1}, dashboard_address=None,
                      env={"OMP_NUM_THREADS": threads}) as cluster, Client(cluster) as client:  # fmt: skip
        yield client


def _task(args: argparse.Namespace, i: int, n: int) -> tuple[int, str]:
    """One shard of the command in a worker: (exit code, what it wrote on stderr)."""
    import torch

    from . import run

    if torch.cuda.is_available() and "CUDA_VISIBLE_DEVICES" not in os.environ:  # several GPUs seen: one per shard
        os.environ["LOCAL_RANK"] = str(i % torch.cuda.device_count())
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run(argparse.Namespace(**{**vars(args), "dask": None, "shard": f"{i}/{n}", "quiet": True}))
    return code, err.getvalue()[-4000:]
