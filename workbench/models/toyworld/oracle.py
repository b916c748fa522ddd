"""The oracle: a small CNN that reads an image's shape, colour, texture and scene.

Its ``shape`` head has a ``none`` class, trained on scenes without object and on degraded images
(noise, blobs), so an image wrecked by pruning is flagged instead of being counted as erased.
Its 128-d penultimate features define the toy-world FID (``evaluate.toy_fid``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from .draw import draw, sample_specs
from .grammar import COLOURS, NO_OBJECT, SCENES, SHAPES, TEXTURES

HEADS = {"shape": SHAPES + (NO_OBJECT,), "colour": COLOURS, "texture": TEXTURES, "scene": SCENES}
FEATURES = 128


class Oracle(nn.Module):
    """CNN over 32x32 RGB in [0, 1] with one linear head per attribute."""

    def __init__(self):
        super().__init__()

        def block(i, o):
            return nn.Sequential(
                nn.Conv2d(i, o, 3, padding=1),
                nn.BatchNorm2d(o),
                nn.ReLU(),
                nn.Conv2d(o, o, 3, padding=1),
                nn.BatchNorm2d(o),
                nn.ReLU(),
            )

        self.body = nn.Sequential(
            block(3, 32),
            nn.MaxPool2d(2),
            block(32, 64),
            nn.MaxPool2d(2),
            block(64, 128),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, FEATURES),
            nn.ReLU(),
        )
        self.heads = nn.ModuleDict({k: nn.Linear(FEATURES, len(v)) for k, v in HEADS.items()})

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, 128), used for the toy-world FID."""
        return self.body(images)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(images)
        return {k: h(f) for k, h in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 256) -> dict[str, list[str]]:
        """Predicted attribute names for each image (shape 'none' means no object / degraded)."""
        self.eval()
        out: dict[str, list[str]] = {k: [] for k in HEADS}
        dev = next(self.parameters()).device
        for i in range(0, len(images), batch):
            logits = self(images[i : i + batch].to(dev, torch.float32))
            for k, v in logits.items():
                out[k] += [HEADS[k][j] for j in v.argmax(1).tolist()]
        return out


def degraded_batch(n: int, generator: torch.Generator, device) -> torch.Tensor:
    """Images with no readable object: uniform noise, smooth blobs, and washed-out noise."""
    kind = torch.randint(3, (n,), generator=generator, device=device)
    noise = torch.rand(n, 3, 32, 32, generator=generator, device=device)
    low = torch.rand(n, 3, 4, 4, generator=generator, device=device)
    blobs = F.interpolate(low, size=32, mode="bilinear", align_corners=False)
    grey = 0.5 + 0.15 * (noise - 0.5)
    return torch.where((kind == 0)[:, None, None, None], noise, torch.where((kind == 1)[:, None, None, None], blobs, grey))


def training_batch(n: int, generator: torch.Generator, device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A fresh labelled batch: objects, scenes alone (label none) and degraded images (label none)."""
    ix = sample_specs(n, generator, p_none=0.1, device=device)
    imgs = draw(**ix, generator=generator)
    n_bad = n // 10
    imgs[:n_bad] = degraded_batch(n_bad, generator, device)
    ix["shape"][:n_bad] = len(SHAPES)
    ix["scene"][:n_bad] = -100  # no scene label for degraded images
    none = ix["shape"] == len(SHAPES)
    ix["colour"] = torch.where(none, -100, ix["colour"])
    ix["texture"] = torch.where(none, -100, ix["texture"])
    return imgs, ix


def train(steps: int = 3000, batch: int = 256, device: str = "cpu", seed: int = 0, progress: bool = True) -> Oracle:
    """Train an oracle on freshly drawn images (every batch is new: no overfitting to a set)."""
    from tqdm.auto import trange

    torch.manual_seed(seed)
    g = torch.Generator(device).manual_seed(seed)
    model = Oracle().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    model.train()
    for _ in trange(steps, disable=not progress, desc="oracle"):
        imgs, ix = training_batch(batch, g, device)
        imgs = imgs + 0.03 * torch.randn(imgs.shape, generator=g, device=device)  # robustness to model noise
        logits = model(imgs)
        loss = sum(F.cross_entropy(logits[k], ix[k], ignore_index=-100) for k in HEADS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: Oracle, n: int = 4096, seed: int = 12345, device: str = "cpu") -> dict[str, float]:
    """Per-head accuracy on fresh held-out images (a seed never used in training)."""
    g = torch.Generator(device).manual_seed(seed)
    imgs, ix = training_batch(n, g, device)
    model.eval()
    logits = model(imgs)
    out = {}
    for k in HEADS:
        keep = ix[k] != -100
        out[k] = float((logits[k].argmax(1)[keep] == ix[k][keep]).float().mean())
    return out


def save(model: Oracle, path: str | Path) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(path))


def load(path: str | Path, device: str = "cpu") -> Oracle:
    model = Oracle()
    model.load_state_dict(load_file(str(path)))
    return model.to(device).eval()
