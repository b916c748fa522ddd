"""record(): run a pipeline over a prompt set and fill a store, resuming where it stopped."""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import socket
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import zarr

from ..models.families import denoiser_of, family_of
from ..models.loading import default_image_size, generation_defaults, model_digests, model_hashes, model_id
from ..models.sites import SiteFilter, select
from ..models.slots import Slots, injecting
from ..prompts import PromptSet
from ..store import StoreError, StoreWriter, WriterLock, jsonable
from ..store.lock import live_shards, shard_lock
from ..store.shards import parse_shard
from .hooks import DEFAULT_STATS, Recorder, run_pipe, uses_cfg

DEFAULT_STORES = Path("stores")


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("workbench", "torch", "diffusers", "transformers", "xarray", "zarr"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def provenance(pipe, steps: int, guidance: float, size: int | None) -> dict:
    """What a store must remember about how it was recorded."""
    hashes = model_hashes(pipe)
    sched = pipe.scheduler
    den = denoiser_of(pipe)
    image_size = size or getattr(pipe, "image_size", None) or default_image_size(pipe)
    family = family_of(pipe)
    return {
        "model_id": model_id(pipe),
        "pipeline": type(pipe).__name__,
        "weights_hash": hashes,
        "weights_digest": model_digests(pipe),  # the same weights, checkable from the model folder's files alone
        "scheduler": {"class": type(sched).__name__, **{k: jsonable(v) for k, v in dict(sched.config).items()}},
        "steps": steps,
        "guidance": guidance,
        "guidance_mode": "distilled" if family.distilled(pipe) else ("cfg" if uses_cfg(pipe, guidance) else "none"),
        "model_family": family.name,
        "image_size": int(image_size),
        "dtype": str(den.dtype).replace("torch.", ""),
        "device": str(den.device),
        "seeds": "one torch.Generator('cpu') per prompt, seeded with the prompt's seed; paired target/reference prompts share seeds",
        "packages": _versions(),
    }


def record(
    pipe,
    prompts: PromptSet,
    out: str | Path,
    sites: SiteFilter = None,
    steps: int | None = None,
    guidance: float | None = None,
    batch_size: int = 8,
    stats: Sequence[str] = DEFAULT_STATS,
    size: int | None = None,
    progress: bool = True,
    shard: tuple[int, int] | str | None = None,
    slots: Slots | None = None,
    sums_only: bool = False,
) -> Path:
    """Record ``prompts`` into the store at ``out`` (created, extended or resumed) and return its path.

    Prompts already recorded there (same text, set and seed) are skipped, so an interrupted call
    started again with the same arguments records only what is missing. ``steps`` and
    ``guidance`` default to the model's own (``generation_defaults``: 25 and 1.5 for the toy
    world, 50 and 7.5 for Stable Diffusion). A store this call created is removed again if it
    fails before any prompt is recorded, so an aborted start leaves nothing behind. One writer at a
    time: ``<out>.lock`` beside the store refuses a second one (a dead writer's lock is taken over).

    ``shard=(i, n)`` (or ``"i/n"``; ``shard_from_env()`` reads torchrun's and accelerate's RANK and
    WORLD_SIZE) records only the prompt chunks ``c`` with ``c % n == i``, so n processes given the
    same arguments fill one store together: the first to start plans the store (every prompt and
    array), each writes only its own chunks, and the last to finish marks the store complete
    (``finalise`` does it by hand). A killed shard, run again, resumes its own chunks.

    ``slots`` (``models.slots.Slots``) records prompts written with placeholder slots, each slot
    holding the given embedding (an attacked prompt, a soft prompt): the same kind of store as
    from text, and the same store when the embeddings are real tokens' (tested).

    ``sums_only`` keeps per-set sums as it records, no per-prompt rows (``store.sums``: what masks,
    sweeps and overlaps need, at FLUX size 78 MB a prompt less; docs/scale.md). Its prompts are
    fixed when it starts, and it records with one process.
    """
    if slots is not None:
        with injecting(pipe, slots.token_id, slots.vectors, texts=slots.texts):
            return record(pipe, prompts, out, sites, steps, guidance, batch_size, stats, size, progress, shard,
                          sums_only=sums_only)  # fmt: skip
    if "://" in str(out):
        raise StoreError(
            f"{out}: recording writes a local folder (its lock files and atomic creation need a POSIX file system); "
            f"record to a local path, then copy it with `workbench push STORE {out}`"
        )
    defaults = generation_defaults(pipe)
    steps = defaults["steps"] if steps is None else steps
    guidance = defaults["guidance"] if guidance is None else guidance
    if len(prompts) == 0:
        raise ValueError("the prompt set is empty: give at least one prompt (a named set or a file)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if int(steps) < 1:
        raise ValueError(f"steps={steps}: give at least 1 denoising step (the paper uses 50 on SD1.5)")
    shard = parse_shard(shard)
    if sums_only and shard is not None:
        raise ValueError("a sums-only store records with one process for now: drop --shard (or record raw shards and reduce)")
    chosen = select(pipe, sites)
    rec = Recorder(pipe, [s.name for s in chosen], stats)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    run = _Run(pipe, prompts, Path(out), chosen, rec, steps, guidance, size, batch_size, progress, sums_only)
    if shard is None:
        with WriterLock(out):  # a second writer on this path is refused, never interleaved
            _refuse_shards(out, None)
            fresh = not Path(out).exists()
            try:
                writer = run.plan()
                run.fill(writer)
            except BaseException:
                _remove_if_empty(out, fresh)
                raise
            writer.finish()
        return Path(out)
    _record_shard(run, out, *shard)
    return Path(out)


def _record_shard(run: _Run, out: str | Path, i: int, n: int) -> None:
    """Shard ``i`` of ``n``: plan the store if it is the first, fill its own chunks, and mark the
    store complete if it is the last to finish."""
    with shard_lock(out, i, n):  # a second copy of this shard is refused
        with WriterLock(out, role=f"shard {i}/{n} planning", wait=True):
            _refuse_shards(out, n)
            writer = run.plan(shards=n)
        run.fill(writer, shard=(i, n))
        with WriterLock(out, role=f"shard {i}/{n} finalising", wait=True):
            if not writer.finish():
                print(
                    f"shard {i}/{n} of {out} is done; the last shard to finish marks the store complete "
                    f"(or run `workbench record --finalise {out}`)",
                    file=sys.stderr,
                )


def finalise(out: str | Path) -> Path:
    """Mark a sharded store complete once every prompt is recorded, or say which shards to rerun."""
    from ..store import open_store

    out = Path(out)
    with WriterLock(out, role="finalise", wait=True):
        tree = open_store(out, allow_partial=True)
        done = tree["done"].values
        if not done.all():
            plan = tree.attrs.get("plan") or {}
            chunk, n = int(tree.attrs.get("chunk", 8)), int(plan.get("shards", 1))
            missing = np.flatnonzero(~done)
            shards = sorted({int(i) // chunk % n for i in missing})
            which = ", ".join(f"--shard {s}/{n}" for s in shards) if n > 1 else "the same record command"
            raise StoreError(
                f"{out}: {len(missing)} of {done.size} prompts are not recorded yet (first: row {missing[0]}): "
                f"run {which} again with the same arguments (they resume), then finalise"
            )
        writer = StoreWriter(out, zarr.open_group(str(out), mode="r+", use_consolidated=False), int(tree.attrs["chunk"]))
        writer.finish()
    return out


def _refuse_shards(out, shards: int | None) -> None:
    """An unsharded writer, or one planned for another number of shards, never joins running shards."""
    for i, n, holder in live_shards(out):
        if shards is None or n != shards:
            raise StoreError(
                f"{out} is being recorded by shard {i}/{n} (process {holder.get('pid')} on {holder.get('host')}): "
                + ("wait for the shards to finish" if shards is None else f"run with --shard I/{n}, or wait for them to finish")
                + ", or record into another --out"
            )


@dataclass
class _Run:
    """One call's settings: plans the store and fills it."""

    pipe: object
    prompts: PromptSet
    out: Path
    sites: list
    rec: Recorder
    steps: int
    guidance: float
    size: int | None
    batch_size: int
    progress: bool
    sums_only: bool = False

    def plan(self, shards: int | None = None) -> StoreWriter:
        """Open or create the store, add the prompts and, for shards, make every array first (by
        recording the first chunk), so that writers afterwards only fill chunks. Under the lock."""
        prov = provenance(self.pipe, self.steps, self.guidance, self.size)
        if shards is None:
            writer = StoreWriter.open(self.out, prov, self.sites, self.rec.stats, chunk=self.batch_size, sums_only=self.sums_only)
            writer.add_prompts(self.prompts)
            return writer
        fresh = not self.out.exists()
        try:
            writer = StoreWriter.open(self.out, prov, self.sites, self.rec.stats, chunk=self.batch_size)
            writer.check_shardable()
            me = (socket.gethostname(), os.getpid())
            others = [s for s in live_shards(self.out) if (s[2].get("host"), s[2].get("pid")) != me]
            # once a sharded run is planned and other shards run, its prompts are fixed: one with others is refused
            planned = writer.group.attrs.get("plan") is not None
            index = writer.indices(self.prompts) if planned and others else writer.add_prompts(self.prompts)
            if not writer.has_arrays():  # the arrays take their shapes from a real batch: record the first chunk
                first = min(index) // writer.chunk
                self.fill(writer, only=lambda c: c == first, label="planning")
            writer.group.attrs["plan"] = {"shards": shards, "n_prompts": writer.n_prompts()}
            return writer
        except BaseException:
            _remove_if_empty(self.out, fresh)
            raise

    def fill(self, writer: StoreWriter, shard: tuple[int, int] | None = None, only=None, label: str = "recording") -> None:
        """Record this call's prompts that are not done, in the chunks this process owns."""
        if shard is not None:
            i, n = shard
            only = lambda c: c % n == i  # noqa: E731
        _record_prompts(
            self.pipe, self.prompts, writer, self.rec, self.steps, self.guidance, self.size, self.progress, only, label
        )


def _remove_if_empty(out: Path, fresh: bool) -> None:
    """A store this call created and recorded nothing into is removed: an aborted start leaves nothing."""
    if not fresh or not Path(out).exists():
        return
    try:
        empty = not zarr.open_group(str(out), mode="r", use_consolidated=False)["done"][:].any()
    except Exception:  # not even a skeleton: nothing of value
        empty = True
    if empty:
        shutil.rmtree(out, ignore_errors=True)


def _record_prompts(
    pipe,
    prompts: PromptSet,
    writer: StoreWriter,
    rec: Recorder,
    steps: int,
    guidance: float,
    size,
    progress: bool,
    only: Callable[[int], bool] | None = None,
    label: str = "recording",
) -> None:
    """Generate the missing prompts batch by batch (of the chunks ``only`` accepts) and hand each
    batch to a background writer. Runs no metadata step once the arrays exist."""
    from tqdm.auto import tqdm

    out = writer.path
    index = writer.indices(prompts)
    done = writer.done()
    todo = sorted(i for i in set(index) if not done[i])
    if writer.sums_only():  # whole chunks: a chunk's sums are written at once, over every prompt it holds
        n, c = writer.n_prompts(), writer.chunk
        todo = sorted({j for i in todo for j in range(i // c * c, min((i // c + 1) * c, n))})
    stored = writer.prompts()
    cfg = uses_cfg(pipe, guidance)
    # batches follow store chunks, so two batches never write the same chunk
    batches: dict[int, list[int]] = {}
    for i in todo:
        if only is None or only(i // writer.chunk):
            batches.setdefault(i // writer.chunk, []).append(i)
    n_todo = sum(len(b) for b in batches.values())
    bar = tqdm(total=n_todo, desc=f"{label} {Path(out).name}", unit="prompt", disable=not progress)
    # one background writer: batch i is compressed and written while batch i+1 generates
    pending: Future | None = None
    with ThreadPoolExecutor(max_workers=1) as pool, torch.inference_mode():
        for group in batches.values():
            for run in _contiguous(group):
                ps = [stored[i] for i in run]
                with rec:
                    run_pipe(pipe, [p.text for p in ps], [p.seed for p in ps], steps, guidance, size)
                result = rec.result(len(run), cfg)
                if pending is not None:
                    pending.result()  # re-raises a failed write; keeps at most one batch in flight
                pending = pool.submit(writer.write, run, result)
                n_done = len(run)
                pending.add_done_callback(lambda _f, n=n_done: bar.update(n))
        if pending is not None:
            pending.result()
    bar.close()


def _contiguous(ix: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in ix:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs
