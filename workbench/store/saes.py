"""Sparse autoencoders on disk, in SAELens's format, read and applied with numpy.

A folder holds what SAELens (>= 6) writes and ``SAE.load_from_disk(folder)`` reads unchanged:

    cfg.json                 d_in, d_sae, dtype, device, apply_b_dec_to_input, normalize_activations,
                             reshape_activations, architecture ('topk' with ``k``; 'jumprelu': a
                             BatchTopK SAE's inference form), metadata {sae_lens_version,
                             hook_name (the site), model_name, workbench: how it was made, metrics}
    sae_weights.safetensors  W_enc (d_in, d_sae), b_enc (d_sae), W_dec (d_sae, d_in), b_dec (d_in)
                             [, threshold (d_sae): jumprelu]
    sparsity.safetensors     sparsity (d_sae): log10 of each feature's firing frequency on the samples

``cfg.json`` is written last and records the weights' sha256 (metadata.workbench.sha256), so a
folder whose weights were cut short or changed is refused by ``load_sae`` with the fix. No torch:
the analysis encodes stored samples with these arrays.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CFG, WEIGHTS, SPARSITY = "cfg.json", "sae_weights.safetensors", "sparsity.safetensors"
#: the SAELens release whose format is written (its 6.x config: architecture at the top level)
SAE_LENS_VERSION = "6.12.0"
ARCHITECTURES = ("topk", "jumprelu")


@dataclass
class SAE:
    """A trained SAE's arrays (float32) and what made it; ``encode``/``decode`` as SAELens's."""

    W_enc: np.ndarray
    b_enc: np.ndarray
    W_dec: np.ndarray
    b_dec: np.ndarray
    architecture: str = "topk"
    k: int = 32
    threshold: np.ndarray | None = None
    site: str = ""
    model: str = ""
    info: dict = field(default_factory=dict)

    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.W_enc.shape[1])

    def pre(self, x: np.ndarray) -> np.ndarray:
        """Pre-activations (..., d_sae) of inputs (..., d_in)."""
        return (np.asarray(x, np.float32) - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Feature activations (..., d_sae): the top k pre-activations through a ReLU (topk), or
        those above each feature's threshold (jumprelu)."""
        pre = self.pre(x)
        if self.architecture == "jumprelu":
            return np.where(pre > self.threshold, np.maximum(pre, 0), 0).astype(np.float32)
        k = min(self.k, pre.shape[-1])
        idx = np.argpartition(-pre, k - 1, axis=-1)[..., :k]
        out = np.zeros_like(pre)
        np.put_along_axis(out, idx, np.maximum(np.take_along_axis(pre, idx, -1), 0), -1)
        return out

    def decode(self, z: np.ndarray) -> np.ndarray:
        return z @ self.W_dec + self.b_dec


def _cfg(sae: SAE, sha: str) -> dict:
    cfg = {
        "d_in": sae.d_in, "d_sae": sae.d_sae, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
        "normalize_activations": "none", "reshape_activations": "none", "architecture": sae.architecture,
        "metadata": {"sae_lens_version": SAE_LENS_VERSION, "sae_lens_training_version": SAE_LENS_VERSION, "hook_name": sae.site,
                     "model_name": sae.model, "workbench": {**sae.info, "sha256": sha}},
    }  # fmt: skip
    if sae.architecture == "topk":
        cfg.update(k=int(sae.k), rescale_acts_by_decoder_norm=False)
    return cfg


def save_sae(folder: str | Path, sae: SAE, sparsity: np.ndarray | None = None) -> Path:
    """Write ``sae`` in SAELens's format; cfg.json last and atomically (it commits the folder)."""
    from safetensors.numpy import save

    if sae.architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {sae.architecture!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CFG).unlink(missing_ok=True)  # an older SAE here is no longer whole
    arrays = {"W_enc": sae.W_enc, "b_enc": sae.b_enc, "W_dec": sae.W_dec, "b_dec": sae.b_dec}
    if sae.architecture == "jumprelu":
        arrays["threshold"] = sae.threshold
    data = save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()})
    _atomic(folder / WEIGHTS, data)
    if sparsity is not None:
        _atomic(folder / SPARSITY, save({"sparsity": np.ascontiguousarray(sparsity, dtype=np.float32)}))
    _atomic(folder / CFG, json.dumps(_cfg(sae, hashlib.sha256(data).hexdigest()), indent=1).encode())
    return folder


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def load_sae(folder: str | Path) -> SAE:
    """Read an SAE folder in SAELens's format (one written here is checked against its checksum)."""
    from safetensors.numpy import load

    folder = Path(folder)
    again = f"train it again (`workbench sae ... --out {folder}`)"
    if not (folder / CFG).exists():
        raise FileNotFoundError(f"{folder} holds no {CFG}: it is not a whole SAE folder; {again}")
    try:
        cfg = json.loads((folder / CFG).read_text())
        arch = cfg["architecture"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{folder / CFG} is damaged ({type(err).__name__}): {again}") from err
    if arch not in ARCHITECTURES:
        raise ValueError(f"{folder} holds a {arch!r} SAE: the workbench reads {', '.join(ARCHITECTURES)} SAEs")
    if not (folder / WEIGHTS).exists():
        raise ValueError(f"{folder / WEIGHTS} is missing: {again}")
    data = (folder / WEIGHTS).read_bytes()
    meta = cfg.get("metadata") or {}
    mine = meta.get("workbench") or {}
    if "sha256" in mine and hashlib.sha256(data).hexdigest() != mine["sha256"]:
        raise ValueError(f"{folder / WEIGHTS} is damaged (its checksum is not the one {CFG} records): {again}")
    w = load(data)
    return SAE(w["W_enc"], w["b_enc"], w["W_dec"], w["b_dec"], arch, int(cfg.get("k", 0)), w.get("threshold"),
               str(meta.get("hook_name") or ""), str(meta.get("model_name") or ""), {k: v for k, v in mine.items() if k != "sha256"})  # fmt: skip


def load_sparsity(folder: str | Path) -> np.ndarray | None:
    """log10 firing frequency per feature, if the folder has it."""
    from safetensors.numpy import load_file

    path = Path(folder) / SPARSITY
    return load_file(str(path))["sparsity"] if path.exists() else None
