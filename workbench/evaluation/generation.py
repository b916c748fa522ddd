"""Images of prompts for judging: ``generate`` (one CPU generator per prompt, so an image depends
on its prompt and seed only) and ``images_of``, memoised by the model's weights."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence

import torch

from ..models.families import denoiser_of
from ..models.loading import image_size_of, model_hashes, run_options

#: images_of memo: (weights, scheduler, settings, prompts) -> images; a few entries
_EVAL_CACHE: OrderedDict[tuple, torch.Tensor] = OrderedDict()
_EVAL_CACHE_SIZE = 8


@torch.no_grad()
def generate(pipe, texts: list[str], seeds: list[int], steps: int = 25, guidance: float = 1.5, batch: int = 32) -> torch.Tensor:
    """Images (N, 3, H, W) in [0, 1], one CPU generator per prompt."""
    if len(texts) != len(seeds):
        raise ValueError(f"got {len(texts)} prompts and {len(seeds)} seeds: give one seed per prompt")
    extra = run_options(pipe)
    out = []
    for i in range(0, len(texts), batch):
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds[i : i + batch]]
        images = pipe(texts[i : i + batch], num_inference_steps=steps, guidance_scale=guidance, generator=gens, output_type="pt",
                      **extra).images  # fmt: skip
        out.append(images.float().cpu())
    return torch.cat(out)


def images_of(pipe, prompts: Sequence, steps: int, guidance: float) -> torch.Tensor:
    """``generate`` for prompts with seeds, memoised by content: the key holds the hashes of the
    model's weights (they move whenever a weight is changed in place, pruning included), the
    scheduler's config, dtype, device, the settings and the prompts, so a table of edits generates
    the unedited model's images once."""
    texts, seeds = [p.text for p in prompts], [int(p.seed) for p in prompts]
    key = (tuple(sorted(model_hashes(pipe).items())), json.dumps(dict(pipe.scheduler.config), sort_keys=True, default=str),
           str(denoiser_of(pipe).dtype), str(denoiser_of(pipe).device), image_size_of(pipe), steps, float(guidance), tuple(texts),
           tuple(seeds))  # fmt: skip
    if key not in _EVAL_CACHE:
        _EVAL_CACHE[key] = generate(pipe, texts, seeds, steps, guidance)
        while len(_EVAL_CACHE) > _EVAL_CACHE_SIZE:
            _EVAL_CACHE.popitem(last=False)
    _EVAL_CACHE.move_to_end(key)
    return _EVAL_CACHE[key].clone()
