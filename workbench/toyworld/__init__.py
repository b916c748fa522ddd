"""The toy world: a small SD-architecture text-to-image model whose concepts are known exactly.

``load()`` returns the shipped pipeline; ``load_oracle()`` its ground-truth classifier.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .grammar import ATTRIBUTES, COLOURS, NO_OBJECT, SCENES, SHAPES, TEXTURES, Spec, parse
from .pipeline import ToyWorldPipeline

WEIGHTS = Path(__file__).parent / "weights"


def load(path: str | Path | None = None, device: str = "cpu", dtype: torch.dtype = torch.float32) -> ToyWorldPipeline:
    """The shipped toy-world pipeline (or one exported by the training script at ``path``)."""
    folder = Path(path) if path is not None else WEIGHTS
    if not (folder / "model_index.json").exists():
        raise FileNotFoundError(
            f"no toy-world model at {folder}: reinstall the package, or train one with "
            "`python -m workbench.toyworld.train --out runs/toy --export <folder>`"
        )
    pipe = ToyWorldPipeline.from_pretrained(str(folder), dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    if path is None:
        pipe.register_to_config(_name_or_path="toy")
    return pipe.to(device)


def load_oracle(path: str | Path | None = None, device: str = "cpu"):
    """The oracle classifier shipped beside the model."""
    from .oracle import load as _load

    return _load(Path(path) if path is not None else WEIGHTS / "oracle.safetensors", device)


__all__ = ["ATTRIBUTES", "COLOURS", "NO_OBJECT", "SCENES", "SHAPES", "TEXTURES", "Spec", "ToyWorldPipeline", "load", "load_oracle", "parse"]
