"""The weights analysis needs, as data: a mapping of site name -> weight matrix (d x d').

Get it from a loaded pipeline with ``workbench.models.weights_of(pipe, store)``, or straight from
a model folder's safetensors files with :func:`load_weights` (no diffusers, no model build).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def abs_weight(weights: dict, site: str, width: int) -> np.ndarray:
    """|W| of one site as float32 numpy, checked against the store's neuron count."""
    if site not in weights:
        raise ValueError(f"no weight given for site {site}: pass weights_of(pipe, store) or load_weights(model_folder, store)")
    w = np.abs(np.asarray(weights[site], dtype=np.float32))
    if w.ndim != 2 or w.shape[1] != width:
        raise ValueError(f"weight of {site} has shape {tuple(w.shape)}, the store has {width} neurons: is it the same model?")
    return w


def load_weights(folder: str | Path, sites) -> dict[str, np.ndarray]:
    """Site weights (float32) read from a diffusers model folder, only the tensors needed.

    ``sites``: a store (its sites and their ``site_info`` are used: component, module path, the
    neurons' columns) or a list of UNet / text-encoder site names (denoiser sites are module paths
    inside ``unet/``; text sites start with their component: ``text_encoder.text_model...``)."""
    from safetensors import safe_open

    from ..models.files import tensor_files

    folder = Path(folder)
    by_component: dict[str, list[tuple[str, str, list | None]]] = {}
    for n, (comp, path, cols) in _where(sites).items():
        by_component.setdefault(comp, []).append((n, path, cols))
    out = {}
    for comp, members in by_component.items():
        where = tensor_files(folder, comp)
        if not where:
            raise FileNotFoundError(
                f"no safetensors weights in {folder / comp}: give the folder the model was saved to (save_pretrained)"
            )
        for n, path, cols in members:
            key = path + ".weight"
            if key not in where:
                raise ValueError(f"{folder / comp} has no tensor {key}: was the store recorded with another model?")
            with safe_open(str(where[key]), framework="np") as f:
                w = _float32(where[key], f, key)
            out[n] = w if cols is None else np.ascontiguousarray(w[:, cols[0] : cols[1]])
    return out


def _where(sites) -> dict[str, tuple[str, str, list | None]]:
    """site name -> (component, module path, neuron columns) from a store's site_info, or parsed
    from bare names (UNet and text-encoder sites)."""
    if hasattr(sites, "attrs"):
        info = sites.attrs.get("site_info") or {}
        out = {}
        for n in sites.attrs["sites"]:
            i = info.get(n, {})
            comp = i.get("component") or ("unet" if not n.startswith("text_encoder") else n.partition(".")[0])
            path = i.get("path") or (n if comp == "unet" else n.partition(".")[2])
            out[n] = (comp, path, i.get("cols"))
        return out
    out = {}
    for n in sites:
        comp, _, path = n.partition(".")
        out[n] = (comp, path, None) if comp.startswith("text_encoder") else ("unet", n, None)
    return out


def _float32(path: Path, f, key: str) -> np.ndarray:
    """A tensor of an open safetensors file as float32 numpy. bfloat16, which numpy lacks, is read
    as its raw 16 bits from the file (the header names where) and widened: they are the upper half
    of a float32."""
    if f.get_slice(key).get_dtype() != "BF16":
        return np.asarray(f.get_tensor(key), dtype=np.float32)
    import json

    with open(path, "rb") as fh:
        size = int.from_bytes(fh.read(8), "little")
        info = json.loads(fh.read(size))[key]
        lo, hi = info["data_offsets"]
        fh.seek(8 + size + lo)
        bits = np.frombuffer(fh.read(hi - lo), dtype="<u2").reshape(info["shape"])
    return (bits.astype(np.uint32) << 16).view(np.float32)


def weights_from_files(tree, model: str | None = None) -> tuple[dict[str, np.ndarray], int] | None:
    """The store's site weights (as the recording ran them: cast to its dtype) and the UNet's
    parameter count, read from the model folder's files, when every component's files digest as
    the store's ``weights_digest`` says; None when the files cannot tell (a store recorded before
    digests, a hub id, bfloat16) or do not match: then load the pipeline, whose check names the
    component that differs. ``model`` defaults to the store's model id."""
    from ..models.files import folder_digest, folder_of, parameter_count

    prov = tree.wb.provenance
    want = prov.get("weights_digest") or {}
    folder = folder_of(model or prov["model_id"])
    dtype = str(prov.get("dtype") or "float32")
    if not want or folder is None or any(folder_digest(folder, c, dtype) != d for c, d in want.items()):
        return None
    weights = load_weights(folder, tree)
    if dtype != "float32":
        weights = {k: v.astype(dtype).astype(np.float32) for k, v in weights.items()}
    denoiser = next((i["component"] for i in (tree.attrs.get("site_info") or {}).values()
                     if not str(i.get("component", "")).startswith("text_encoder")), "unet")  # fmt: skip
    return weights, parameter_count(folder, denoiser)
