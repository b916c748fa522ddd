"""The quality gate: does the unpruned model draw what its captions say?"""

from __future__ import annotations

import torch

from .draw import sample_specs, spec_of


def gate_prompts(n: int, seed: int = 2024) -> list:
    """``n`` fully specified Specs (every attribute named), fixed by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    ix = sample_specs(n, g)
    return [spec_of(ix, i) for i in range(n)]


@torch.no_grad()
def quality_gate(
    pipe, oracle, n: int = 256, batch: int = 64, steps: int = 25, guidance: float = 1.5, seed: int = 2024
) -> dict[str, float]:
    """Share of ``n`` fixed-seed samples whose shape, colour, texture and scene the oracle reads as
    captioned, plus the share the oracle finds degraded (no object)."""
    specs = gate_prompts(n, seed)
    hits = {"shape": 0, "colour": 0, "texture": 0, "scene": 0, "degraded": 0}
    dev = pipe.unet.device
    for i in range(0, n, batch):
        chunk = specs[i : i + batch]
        gens = [torch.Generator(dev).manual_seed(seed + i + j) for j in range(len(chunk))]
        imgs = pipe(
            [s.caption() for s in chunk], num_inference_steps=steps, guidance_scale=guidance, generator=gens, output_type="pt"
        ).images
        pred = oracle.predict(imgs)
        for j, s in enumerate(chunk):
            for k in ("shape", "colour", "texture", "scene"):
                hits[k] += pred[k][j] == getattr(s, k)
            hits["degraded"] += pred["shape"][j] == "none"
    return {k: v / n for k, v in hits.items()}
