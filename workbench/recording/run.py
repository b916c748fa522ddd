"""record(): run a pipeline over a prompt set and fill a store, resuming where it stopped."""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

from ..models.loading import generation_defaults, model_hashes, model_id
from ..models.sites import SiteFilter, select
from ..prompts import PromptSet
from ..store import StoreWriter, WriterLock, jsonable
from .hooks import DEFAULT_STATS, Recorder, run_pipe

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
    image_size = size or getattr(pipe, "image_size", None) or pipe.unet.config.sample_size * getattr(pipe, "vae_scale_factor", 8)
    return {
        "model_id": model_id(pipe),
        "pipeline": type(pipe).__name__,
        "weights_hash": hashes,
        "scheduler": {"class": type(sched).__name__, **{k: jsonable(v) for k, v in dict(sched.config).items()}},
        "steps": steps,
        "guidance": guidance,
        "image_size": int(image_size),
        "dtype": str(pipe.unet.dtype).replace("torch.", ""),
        "device": str(pipe.unet.device),
        "seeds": "one torch.Generator('cpu') per prompt, seeded with the prompt's seed; paired target/reference prompts share seeds",
        "packages": _versions(),
    }


def record(
    pipe,
    prompts: PromptSet,
    out: str | Path,
    sites: SiteFilter = "ffn2",
    steps: int | None = None,
    guidance: float | None = None,
    batch_size: int = 8,
    stats: Sequence[str] = DEFAULT_STATS,
    size: int | None = None,
    progress: bool = True,
) -> Path:
    """Record ``prompts`` into the store at ``out`` (created, extended or resumed) and return its path.

    Prompts already recorded there (same text, set and seed) are skipped, so an interrupted call
    started again with the same arguments records only what is missing. ``steps`` and
    ``guidance`` default to the model's own (``generation_defaults``: 25 and 1.5 for the toy
    world, 50 and 7.5 for Stable Diffusion). A store this call created is removed again if it
    fails before any prompt is recorded, so an aborted start leaves nothing behind. One writer at a
    time: ``<out>.lock`` beside the store refuses a second one (a dead writer's lock is taken over).
    """
    import shutil

    defaults = generation_defaults(pipe)
    steps = defaults["steps"] if steps is None else steps
    guidance = defaults["guidance"] if guidance is None else guidance
    if len(prompts) == 0:
        raise ValueError("the prompt set is empty: give at least one prompt (a named set or a file)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if int(steps) < 1:
        raise ValueError(f"steps={steps}: give at least 1 denoising step (the paper uses 50 on SD1.5)")
    chosen = select(pipe, sites)
    rec = Recorder(pipe, [s.name for s in chosen], stats)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with WriterLock(out):  # a second writer on this path is refused, never interleaved
        fresh = not Path(out).exists()
        writer = StoreWriter.open(out, provenance(pipe, steps, guidance, size), chosen, rec.stats, chunk=batch_size)
        try:
            _fill(pipe, prompts, writer, rec, steps, guidance, size, progress)
        except BaseException:
            if fresh and not writer.done().any():
                shutil.rmtree(out, ignore_errors=True)  # nothing recorded: leave no half-made store behind
            raise
        writer.finish()
    return Path(out)


def _fill(
    pipe, prompts: PromptSet, writer: StoreWriter, rec: Recorder, steps: int, guidance: float, size, progress: bool
) -> None:
    """Generate the missing prompts batch by batch and hand each batch to a background writer."""
    from tqdm.auto import tqdm

    out = writer.path
    index = writer.add_prompts(prompts)
    done = writer.done()
    todo = sorted(i for i in set(index) if not done[i])
    stored = writer.prompts()
    cfg = guidance > 1.0
    # batches follow store chunks, so two batches never write the same chunk
    batches: dict[int, list[int]] = {}
    for i in todo:
        batches.setdefault(i // writer.chunk, []).append(i)
    bar = tqdm(total=len(todo), desc=f"recording {Path(out).name}", unit="prompt", disable=not progress)
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
