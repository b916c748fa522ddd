"""record(): run a pipeline over a prompt set and fill a store, resuming where it stopped."""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

from ..models.loading import model_id, weights_hash
from ..models.sites import SiteFilter, select
from ..prompts import PromptSet
from ..store import StoreWriter, jsonable
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
    hashes = {}
    for comp in ("unet", "text_encoder", "text_encoder_2"):
        mod = getattr(pipe, comp, None)
        if mod is not None:
            hashes[comp] = weights_hash(mod)
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
    steps: int = 25,
    guidance: float = 1.5,
    batch_size: int = 8,
    stats: Sequence[str] = DEFAULT_STATS,
    size: int | None = None,
    progress: bool = True,
) -> Path:
    """Record ``prompts`` into the store at ``out`` (created, extended or resumed) and return its path.

    Prompts already recorded there (same text, set and seed) are skipped, so an interrupted call
    started again with the same arguments records only what is missing.
    """
    from tqdm.auto import tqdm

    if len(prompts) == 0:
        raise ValueError("the prompt set is empty: give at least one prompt (a named set or a file)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    chosen = select(pipe, sites)
    rec = Recorder(pipe, [s.name for s in chosen], stats)
    writer = StoreWriter.open(out, provenance(pipe, steps, guidance, size), chosen, rec.stats, chunk=batch_size)
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
    writer.finish()
    return Path(out)


def _contiguous(ix: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in ix:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs
