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
    """The one safetensors file of an unsharded component (None when there is none, or it is sharded)."""
    return next((folder / component / f for f in FILES if (folder / component / f).exists()), None)


def tensor_files(folder: Path, component: str) -> dict[str, Path]:
    """Each tensor of a component -> the safetensors file holding it: its one file, or the shards its
    ``*.safetensors.index.json`` lists (FLUX.1's and SD3.5's transformers are sharded); {} for none."""
    import json

    one = component_file(folder, component)
    if one is not None:
        from safetensors import safe_open

        with safe_open(str(one), framework="np") as f:
            return dict.fromkeys(f.keys(), one)
    for name in FILES:
        index = folder / component / f"{name}.index.json"
        if index.exists():
            mapping = json.loads(index.read_text()).get("weight_map", {})
            return {k: folder / component / v for k, v in mapping.items()}
    return {}


def folder_digest(folder: Path, component: str, dtype: str) -> str | None:
    """``weights_digest`` of a component from its files, floating tensors taken as ``dtype`` (the
    store's); None where the files cannot say (none, bfloat16 on either side)."""
    import numpy as np
    from safetensors import safe_open

    where = tensor_files(folder, component)
    if not where or dtype == "bfloat16":
        return None
    h = hashlib.blake2b(digest_size=16)
    opened: dict[Path, object] = {}
    try:
        for name in sorted(where):
            f = opened.get(where[name]) or opened.setdefault(where[name], safe_open(str(where[name]), framework="np"))
            if f.get_slice(name).get_dtype() == "BF16":
                return None
            a = f.get_tensor(name)
            if a.dtype.kind == "f" and str(a.dtype) != dtype:
                a = a.astype(dtype)
            a = np.ascontiguousarray(a)
            h.update(f"{name}:{tuple(a.shape)}:{a.dtype}".encode())
            h.update(a.tobytes())
    finally:
        opened.clear()
    return h.hexdigest()


def parameter_count(folder: Path, component: str) -> int:
    """The number of values in a component's files (its parameters)."""
    import math

    from safetensors import safe_open

    total = 0
    where = tensor_files(folder, component)
    for path in sorted(set(where.values())):
        with safe_open(str(path), framework="np") as f:
            total += sum(math.prod(f.get_slice(n).get_shape()) for n in f.keys() if where.get(n) == path)
    return total
