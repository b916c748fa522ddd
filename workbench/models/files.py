"""A model's weights read from its folder's safetensors files, without building the model (no torch,
no diffusers): where the folder of a model id is, and the order-free digest of a component's files,
equal to ``loading.weights_digest`` of the module save_pretrained wrote them from. The analysis
verbs use it to check a store's weights and read its sites' matrices in a fraction of the time a
pipeline takes to load (benchmarks/masks_verb.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: where diffusers' and transformers' save_pretrained put a component's weights, in the order tried
FILES = ("diffusion_pytorch_model.safetensors", "model.safetensors")


def folder_of(model: str) -> Path | None:
    """The folder holding ``model``'s components: the toy worlds' shipped weights, or a local folder
    saved with save_pretrained; None for anything else (a hub id: load the pipeline)."""
    from .toyworld import TOY, TOY_LANG, WEIGHTS, WEIGHTS_LANG

    folder = {TOY: WEIGHTS, TOY_LANG: WEIGHTS_LANG}.get(model, Path(model))
    return folder if (folder / "model_index.json").exists() else None


def component_file(folder: Path, component: str) -> Path | None:
    """The one safetensors file of a component (None when there is none, or it is sharded)."""
    return next((folder / component / f for f in FILES if (folder / component / f).exists()), None)


def folder_digest(folder: Path, component: str, dtype: str) -> str | None:
    """``weights_digest`` of a component from its file, floating tensors taken as ``dtype`` (the
    store's); None where the file cannot say (no single file, bfloat16 on either side)."""
    import numpy as np
    from safetensors import safe_open

    path = component_file(folder, component)
    if path is None or dtype == "bfloat16":
        return None
    h = hashlib.blake2b(digest_size=16)
    with safe_open(str(path), framework="np") as f:
        for name in sorted(f.keys()):
            if f.get_slice(name).get_dtype() == "BF16":
                return None
            a = f.get_tensor(name)
            if a.dtype.kind == "f" and str(a.dtype) != dtype:
                a = a.astype(dtype)
            a = np.ascontiguousarray(a)
            h.update(f"{name}:{tuple(a.shape)}:{a.dtype}".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def parameter_count(folder: Path, component: str) -> int:
    """The number of values in a component's file (its parameters, for a UNet)."""
    import math

    from safetensors import safe_open

    with safe_open(str(component_file(folder, component)), framework="np") as f:
        return sum(math.prod(f.get_slice(n).get_shape()) for n in f.keys())
