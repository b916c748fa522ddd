"""Procedural drawing of toy-world images, batched in torch (runs on CPU or GPU)."""

from __future__ import annotations

import numpy as np
import torch

from .grammar import COLOURS, NO_OBJECT, SCENES, SHAPES, TEXTURES, Spec

SIZE = 32
_RGB = {
    "red": (0.86, 0.16, 0.16),
    "green": (0.16, 0.75, 0.24),
    "blue": (0.20, 0.31, 0.90),
    "yellow": (0.92, 0.82, 0.16),
}
_SCENE_RGB = {"night": (0.06, 0.06, 0.16), "snow": (0.93, 0.93, 0.95), "fog": (0.50, 0.50, 0.52)}


def _table(names: tuple[str, ...], rgb: dict[str, tuple[float, float, float]], device) -> torch.Tensor:
    return torch.tensor([rgb[n] for n in names], device=device)


def draw(
    shape: torch.Tensor,
    colour: torch.Tensor,
    texture: torch.Tensor,
    scene: torch.Tensor,
    generator: torch.Generator | None = None,
    size: int = SIZE,
) -> torch.Tensor:
    """Draw a batch of images (B, 3, size, size) in [0, 1] from attribute indices.

    ``shape == len(SHAPES)`` draws no object. Position, size, colour shade, pattern phase and
    pixel noise are jittered from ``generator`` so every call is reproducible.
    """
    device = shape.device
    b = shape.shape[0]

    def rand(*s):
        return torch.rand(*s, generator=generator, device=device)

    yy, xx = torch.meshgrid(torch.arange(size, device=device), torch.arange(size, device=device), indexing="ij")
    yy, xx = yy.float()[None], xx.float()[None]
    s = size / 32
    cx = (13.5 + 5 * rand(b)) * s
    cy = (13.5 + 5 * rand(b)) * s
    r = (9.0 + 3 * rand(b)) * s
    dx = (xx - cx[:, None, None]) / r[:, None, None]
    dy = (yy - cy[:, None, None]) / r[:, None, None]
    masks = torch.stack(
        [
            dx**2 + dy**2 <= 1.0,
            (dx.abs() <= 0.85) & (dy.abs() <= 0.85),
            (dy >= -1.0) & (dy <= 0.8) & (dx.abs() <= (dy + 1.0) / 1.8),
            ((dx.abs() <= 0.33) & (dy.abs() <= 1.0)) | ((dy.abs() <= 0.33) & (dx.abs() <= 1.0)),
        ]
    )  # (shapes, B, H, W)
    idx = shape.clamp(max=len(SHAPES) - 1)
    inside = masks[idx, torch.arange(b, device=device)] & (shape < len(SHAPES))[:, None, None]

    px = torch.floor(rand(b) * 6)[:, None, None]
    py = torch.floor(rand(b) * 6)[:, None, None]
    xs, ys = xx + px, yy + py
    patterns = torch.stack(
        [
            torch.zeros_like(dx, dtype=torch.bool),
            (torch.div(ys, 2, rounding_mode="floor") % 2 == 0).expand_as(dx),
            ((xs % 5 < 2) & (ys % 5 < 2)).expand_as(dx),
            ((torch.div(xs, 4, rounding_mode="floor") + torch.div(ys, 4, rounding_mode="floor")) % 2 == 0).expand_as(dx),
        ]
    )
    pattern = patterns[texture, torch.arange(b, device=device)]

    base = _table(COLOURS, _RGB, device)[colour] * (0.9 + 0.2 * rand(b, 1))
    bg = _table(SCENES, _SCENE_RGB, device)[scene] + 0.04 * (rand(b, 1) - 0.5)
    fg = torch.where(pattern[:, None], base[:, :, None, None] * 0.25, base[:, :, None, None])
    img = torch.where(inside[:, None], fg, bg[:, :, None, None].expand(b, 3, size, size))
    img = img + 0.02 * torch.randn(img.shape, generator=generator, device=device)
    return img.clamp(0, 1)


def sample_specs(n: int, generator: torch.Generator | None = None, p_none: float = 0.0, device="cpu") -> dict[str, torch.Tensor]:
    """Uniformly random attribute indices for ``n`` images (a share ``p_none`` without object)."""

    def pick(k):
        return torch.randint(k, (n,), generator=generator, device=device)

    shape = pick(len(SHAPES))
    if p_none > 0:
        none = torch.rand(n, generator=generator, device=device) < p_none
        shape = torch.where(none, torch.full_like(shape, len(SHAPES)), shape)
    return {"shape": shape, "colour": pick(len(COLOURS)), "texture": pick(len(TEXTURES)), "scene": pick(len(SCENES))}


def spec_of(indices: dict[str, torch.Tensor], i: int) -> Spec:
    """The Spec of image ``i`` of a batch of indices."""
    s = int(indices["shape"][i])
    return Spec(
        shape=SHAPES[s] if s < len(SHAPES) else NO_OBJECT,
        colour=COLOURS[int(indices["colour"][i])],
        texture=TEXTURES[int(indices["texture"][i])],
        scene=SCENES[int(indices["scene"][i])],
    )


def indices_of(specs: list[Spec], device="cpu") -> dict[str, torch.Tensor]:
    """Attribute indices for a list of Specs (inverse of spec_of)."""

    def ix(names, attr):
        return torch.tensor(
            [len(SHAPES) if getattr(s, attr) == NO_OBJECT else names.index(getattr(s, attr)) for s in specs],
            device=device,
        )

    return {
        "shape": ix(SHAPES, "shape"),
        "colour": ix(COLOURS, "colour"),
        "texture": ix(TEXTURES, "texture"),
        "scene": ix(SCENES, "scene"),
    }


def foreground(images: np.ndarray, threshold: float = 0.15) -> np.ndarray:
    """Where the object is in generated toy images ((n, H, W, 3) uint8 or [0, 1] floats): the pixels
    whose colour is further than ``threshold`` (any channel, [0, 1] units) from the image's
    background, read as the median of its border pixels (the scene is one flat colour there).
    An estimate for figures and summaries (the generator returns no mask), not the oracle."""
    x = np.asarray(images, dtype=np.float32)
    if x.max() > 1.0:
        x = x / 255.0
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)  # (n, 4 sides' pixels, 3)
    background = np.median(border, axis=1)[:, None, None, :]
    return np.abs(x - background).max(axis=-1) > threshold
