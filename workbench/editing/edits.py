"""An edit on disk: what an eraser made, in a folder that any tool here can apply.

    DIR/edit.json            method, concept, options, seconds, the model's weights hashes
    DIR/masks.safetensors    pruning masks (ConceptPrune, P-ESD, P-AC): {site: bool, True = pruned}
    DIR/weights.safetensors  fine-tuned parameters (ESD, AC): {parameter name: tensor}

``applied(pipe, edit)`` puts it on a pipeline and takes it off again bit for bit; an edit made for
other weights is refused.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..models.loading import model_hashes
from .prune import pruned


@dataclass
class Edit:
    """One eraser's result: masks or parameters, and how it was made."""

    method: str
    info: dict = field(default_factory=dict)
    masks: dict[str, np.ndarray] | None = None
    weights: dict[str, torch.Tensor] | None = None

    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.masks is not None:  # the format of analysis.save_masks: load_masks and `workbench ablate` read it
            meta = {
                "sites": list(self.masks),
                "method": self.method,
                **{k: v for k, v in self.info.items() if k != "weights_hash"},
            }
            save_file({s: torch.from_numpy(np.ascontiguousarray(m)) for s, m in self.masks.items()}, str(folder / "masks.safetensors"),
                      metadata={"workbench": json.dumps(meta, default=str)})  # fmt: skip
        if self.weights is not None:
            save_file({k: v.contiguous() for k, v in self.weights.items()}, str(folder / "weights.safetensors"))
        (folder / "edit.json").write_text(json.dumps({"method": self.method, **self.info}, indent=1, default=str))
        return folder


def load_edit(folder: str | Path) -> Edit:
    """Read an edit folder written by ``Edit.save`` (``workbench erase --out``)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = folder / "edit.json"
    if not meta.exists():
        raise FileNotFoundError(f"{folder} holds no edit.json: make an edit with `workbench erase --out {folder}`")
    info = json.loads(meta.read_text())
    masks = weights = None
    if (folder / "masks.safetensors").exists():
        masks = {s: t.numpy().astype(bool) for s, t in load_file(str(folder / "masks.safetensors")).items()}
    if (folder / "weights.safetensors").exists():
        weights = load_file(str(folder / "weights.safetensors"))
    return Edit(info.pop("method"), info, masks, weights)


def check_model(pipe, edit: Edit) -> None:
    """Refuse an edit made for other weights (its UNet hash must be this pipeline's)."""
    want = (edit.info.get("weights_hash") or {}).get("unet")
    have = model_hashes(pipe).get("unet")
    if want is not None and want != have:
        raise ValueError(
            f"this edit ({edit.method}) was made for other weights (unet: edit {want[:12]}, model {have[:12]}): "
            "load the model it was made for (its edit.json names it), or make the edit again on this model"
        )


@contextmanager
def applied(pipe, edit: Edit | str | Path, check: bool = True):
    """``with applied(pipe, edit): pipe(...)``: the edit is on inside, the weights exact again after."""
    if not isinstance(edit, Edit):
        edit = load_edit(edit)
    if check:
        check_model(pipe, edit)
    saved: dict[str, torch.Tensor] = {}
    named = dict(pipe.unet.named_parameters())
    try:
        with torch.no_grad():
            for k, v in (edit.weights or {}).items():
                if k not in named or named[k].shape != v.shape:
                    raise ValueError(f"the edit's parameter {k} does not fit this UNet: was it made for another model?")
                saved[k] = named[k].detach().clone()
                named[k].copy_(v.to(named[k].device, named[k].dtype))
        if edit.masks is not None:
            with pruned(pipe, edit.masks):
                yield edit
        else:
            yield edit
    finally:
        with torch.no_grad():
            for k, v in saved.items():
                named[k].copy_(v)
