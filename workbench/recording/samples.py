"""Token samples: per-token activations at chosen sites and denoiser calls, for training SAEs.

``record_samples`` runs the pipeline over a store's prompts (or others) and keeps, at each chosen
site (a Linear's input, or a block's output: the ``block`` site family) and call, a fixed number
of the cond branch's tokens per prompt (all of them where a site has no more), with the generated
image, in the store's ``samples`` group (``store.samples``). Before it writes anything it states
the bytes a prompt takes and refuses to start past ``max_bytes``; a stopped run resumes prompt by
prompt to the same bytes.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..models.families import denoiser_of, family_of
from ..models.hooks import DenoiserCall, Hook, hooks
from ..models.sites import Site, SiteFilter, check_weights, select, site_hooks
from ..prompts import Prompt, PromptSet
from ..store.core import StoreError
from ..store.samples import SampleWriter, bytes_per_prompt, token_positions
from .maps import generate

#: tokens a prompt keeps per site and call by default: every token of the toy worlds' grids, a
#: sample of SD 1.5's 64 x 64 level
DEFAULT_TOKENS = 256


@dataclass
class SampleOptions:
    """What to sample: sites (a site filter), denoiser calls (None: every call), tokens per prompt,
    site and call (0: all), the positions' seed, and a byte budget for the whole run (None: none)."""

    sites: SiteFilter = "block"
    steps: Sequence[int] | None = None
    tokens: int = DEFAULT_TOKENS
    seed: int = 0
    max_bytes: float | None = None
    batch_size: int = 4
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.tokens < 0:
            raise ValueError(f"tokens must be 0 (all) or a positive count, not {self.tokens}")
        if self.steps is not None and (not list(self.steps) or min(self.steps) < 0):
            raise ValueError(f"steps must be denoiser call indices from 0, at least one (got {list(self.steps)})")
        if self.max_bytes is not None and self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {self.max_bytes}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}")


class SampleRecorder:
    """Hooks: at the chosen calls, each site's cond-branch tokens at the positions of its prompt."""

    def __init__(self, pipe, sites: list[Site], steps: Sequence[int], tokens: int, seed: int):
        text = [s.name for s in sites if s.is_text]
        if text:
            raise ValueError(f"sites {text} belong to a text encoder: sample the denoiser's sites (e.g. block, ffn2)")
        self.pipe, self.sites, self.steps = pipe, sites, sorted({int(t) for t in steps})
        self.tokens, self.seed, self.batch = tokens, seed, []
        self.cfg_rows = 2
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> SampleRecorder:
        self.call, self.kept, self.site_tokens, self.timesteps = -1, {s.name: [] for s in self.sites}, {}, []
        index = {s.name: i for i, s in enumerate(self.sites)}
        scale = family_of(self.pipe).timestep_scale

        def denoiser(module, args, kwargs):
            self.call += 1
            self.timesteps.append(float(torch.as_tensor(DenoiserCall.of(args, kwargs).timestep).reshape(-1)[0]) * scale)

        def keep(site: Site, x: torch.Tensor):
            if self.call not in self.steps:
                return
            rows = x.shape[0] // self.cfg_rows
            cond = x[-rows:]  # diffusers' CFG batch is [uncond, cond]
            self.site_tokens[site.name] = int(x.shape[1])
            pos = [
                token_positions(self.seed, p.text, p.seed, index[site.name], self.call, x.shape[1], self.tokens)
                for p in self.batch
            ]
            at = torch.as_tensor(np.stack(pos), dtype=torch.long, device=x.device)
            got = torch.gather(cond, 1, at[..., None].expand(-1, -1, x.shape[2]))
            self.kept[site.name].append((got.to(torch.float16), at.to(torch.int32)))

        spec = [Hook(denoiser_of(self.pipe), denoiser, pre=True, with_kwargs=True)]
        self._stack.enter_context(hooks(*spec, *site_hooks(self.pipe, self.sites, keep)))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def result(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{site: (x (prompt, step, token, width) float16, positions (prompt, step, token))} of the last run."""
        out = {}
        for name, calls in self.kept.items():
            if len(calls) != len(self.steps):
                raise RuntimeError(
                    f"site {name} was sampled at {len(calls)} of the {len(self.steps)} chosen denoiser calls {self.steps}: "
                    "choose calls below the number of denoiser calls of a generation"
                )
            out[name] = (torch.stack([c[0] for c in calls], 1).cpu().numpy(), torch.stack([c[1] for c in calls], 1).cpu().numpy())
        return out


def store_prompts(tree) -> PromptSet:
    """The prompts an opened store recorded, in its order."""
    return PromptSet(
        [Prompt(str(t), str(s), int(d)) for t, s, d in zip(tree["text"].values, tree["set"].values, tree["seed"].values)]
    )


def record_samples(pipe, store: str | Path, options: SampleOptions | None = None, prompts: PromptSet | None = None,
                   progress: bool = True) -> Path:  # fmt: skip
    """Sample tokens into ``<store>/samples`` for ``prompts`` (default: the store's own), with the
    store's steps, guidance and image size; prompts already sampled are skipped. Returns the group's path."""
    from tqdm.auto import tqdm

    from ..models.loading import model_hashes, model_id
    from ..store.reader import open_store

    options = options or SampleOptions()
    tree = open_store(store)
    prov = dict(tree.attrs["provenance"])
    check_weights(pipe, prov)
    prompts = store_prompts(tree) if prompts is None else prompts
    if len(prompts) == 0:
        raise ValueError("the prompt set is empty: give at least one prompt to sample")
    n_steps, guidance, size = int(prov["steps"]), float(prov["guidance"]), prov.get("image_size")
    steps = list(range(n_steps)) if options.steps is None else list(options.steps)
    rec = SampleRecorder(pipe, select(pipe, options.sites), steps, options.tokens, options.seed)
    todo = list(prompts)
    with torch.inference_mode():
        rec.batch = todo[:1]
        first, kept = generate(pipe, rec, todo[:1], n_steps, guidance, size)  # the token counts and image from a real call
        widths = {s.name: s.width for s in rec.sites}
        tokens = {s: int(x.shape[2]) for s, (x, _) in kept.items()}
        per = bytes_per_prompt(widths, tokens, len(rec.steps), first.shape[1:])
        about = {"weights_hash": model_hashes(pipe), "model_id": model_id(pipe), "guidance": guidance, "n_steps": n_steps,
                 "seed": options.seed}  # fmt: skip
        _budget(store, per, len(todo), options.max_bytes, progress)
        derived = {"bytes_per_prompt": per, "site_tokens": dict(rec.site_tokens)}
        writer = SampleWriter.open(store, widths, tokens, rec.steps, first.shape[1:], about, derived)
        rows = writer.rows(todo)
        done = writer.done()
        if not done[rows[0]]:
            writer.write(rows[0], first[0], {s: (x[0], p[0]) for s, (x, p) in kept.items()})
        left = list({r: p for r, p in zip(rows, todo) if not done[r] and r != rows[0]}.items())
        bar = tqdm(total=len(left), desc=f"samples {Path(store).name}", unit="prompt", disable=not progress)
        for lo in range(0, len(left), options.batch_size):
            batch = left[lo : lo + options.batch_size]
            rec.batch = [p for _, p in batch]
            images, kept = generate(pipe, rec, rec.batch, n_steps, guidance, size)
            for i, (row, _) in enumerate(batch):
                writer.write(row, images[i], {s: (x[i], p[i]) for s, (x, p) in kept.items()})
            bar.update(len(batch))
        bar.close()
    return Path(store) / writer.group.path


def _budget(store, per: int, n: int, max_bytes: float | None, progress: bool) -> None:
    """Say what the run takes; refuse it past ``max_bytes``."""
    total = per * n
    line = f"token samples: {_size(per)} a prompt, {_size(total)} for {n} prompts (before compression)"
    if max_bytes is not None and total > max_bytes:
        raise StoreError(
            f"{line}: over the budget of {_size(max_bytes)} (--max-bytes). Sample fewer tokens (--tokens), calls "
            "(--calls), sites or prompts, or raise --max-bytes"
        )
    if progress:
        print(line, file=sys.stderr)


def _size(n: float) -> str:
    for unit, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= f:
            return f"{n / f:.1f} {unit}"
    return f"{int(n)} B"
