"""The toy world: a small SD-architecture text-to-image model whose concepts are known exactly.

``load()`` returns the shipped pipeline; ``load_oracle()`` its ground-truth classifier.
"""

from __future__ import annotations

from pathlib import Path

from .grammar import ATTRIBUTES, COLOURS, NO_OBJECT, SCENES, SHAPES, TEXTURES, Spec, parse

TOY = "toy"
#: the language world (issue 24): the toy world's images, captions with several routes to each concept
TOY_LANG = "toy-lang"
#: the embedded worlds (their images, oracle and judge are the same) and how pages name them
TOY_WORLDS = {TOY: "the toy world", TOY_LANG: "the language toy world (`toy-lang`)"}

WEIGHTS = Path(__file__).parent / "weights"
#: the language world's weights (``--model toy-lang``), once ``train --language --export`` wrote them
WEIGHTS_LANG = Path(__file__).parent / "weights-lang"


def __getattr__(name: str):
    if name == "ToyWorldPipeline":  # diffusers loads on first use, not when a prompt set is listed
        from .pipeline import ToyWorldPipeline

        return ToyWorldPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(path: str | Path | None = None, device: str = "cpu", dtype=None):
    """The shipped toy-world pipeline (or one exported by the training script at ``path``)."""
    folder = Path(path) if path is not None else WEIGHTS
    if not (folder / "model_index.json").exists():
        raise FileNotFoundError(
            f"no toy-world model at {folder}: reinstall the package, or train one with "
            "`python -m workbench.models.toyworld.train --out runs/toy --export <folder>`"
        )
    import torch

    from .pipeline import ToyWorldPipeline

    pipe = _quietly(lambda: ToyWorldPipeline.from_pretrained(str(folder), dtype=dtype or torch.float32))
    pipe.set_progress_bar_config(disable=True)
    if path is None:
        pipe.register_to_config(_name_or_path="toy")
    return pipe.to(device)


def _quietly(fn):
    """Run ``fn`` without diffusers' and transformers' loading bars (the toy world loads in a blink;
    their bars were noise in every notebook and log), then put their settings back."""
    from diffusers.utils import logging as dl
    from transformers.utils import logging as tl

    was = dl.is_progress_bar_enabled(), tl.is_progress_bar_enabled()
    dl.disable_progress_bar(), tl.disable_progress_bar()
    try:
        return fn()
    finally:
        if was[0]:
            dl.enable_progress_bar()
        if was[1]:
            tl.enable_progress_bar()


def load_oracle(path: str | Path | None = None, device: str = "cpu"):
    """The oracle classifier shipped beside the model."""
    from .oracle import load as _load

    return _load(Path(path) if path is not None else WEIGHTS / "oracle.safetensors", device)


__all__ = [
    "ATTRIBUTES",
    "COLOURS",
    "NO_OBJECT",
    "SCENES",
    "SHAPES",
    "TEXTURES",
    "Spec",
    "ToyWorldPipeline",
    "load",
    "load_oracle",
    "parse",
]
