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


@torch.no_grad()
def route_gate(pipe, oracle, per_route: int = 32, split: str | None = "heldout", batch: int = 64, steps: int = 25,
               guidance: float = 1.5, seed: int = 2025) -> dict[str, float]:  # fmt: skip
    """The language world's per-route gate (issue 24): for every route of ``split`` (None: all), the
    share of ``per_route`` fixed-seed samples naming their texture or shape by that route (every other
    attribute named as usual, drawn at random) whose image the oracle reads as the route's value."""
    from dataclasses import replace

    from .language import ROUTES, caption

    dev = pipe.unet.device
    out = {}
    for r in (r for r in ROUTES if split is None or r.split == split):
        attr = "shape" if r.place == "shape" else "texture"
        specs = [replace(s, **{attr: r.value}) for s in gate_prompts(per_route, seed)]
        texts = [caption(s, r if attr == "texture" else None, r if attr == "shape" else None) for s in specs]
        hits = 0
        for i in range(0, per_route, batch):
            gens = [torch.Generator(dev).manual_seed(seed + i + j) for j in range(len(texts[i : i + batch]))]
            imgs = pipe(texts[i : i + batch], num_inference_steps=steps, guidance_scale=guidance, generator=gens,
                        output_type="pt").images  # fmt: skip
            hits += sum(p == r.value for p in oracle.predict(imgs)[attr])
        out[f"{r.value}: {r.phrase}"] = hits / per_route
    return out
