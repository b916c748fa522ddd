"""An edit on disk: what an eraser made, in a folder that any tool here can apply.

    DIR/edit.json            method, concept, options, seconds, the model's weights hashes, and
                             ``files``: the sha256 of each tensor file (written last: it commits the edit)
    DIR/masks.safetensors    pruning masks (ConceptPrune, P-ESD, P-AC): {site: bool, True = pruned}
    DIR/weights.safetensors  fine-tuned parameters (ESD, AC): {parameter name: tensor}
    DIR/features.safetensors an SAE and the features it scales at inference (feature ablation:
                             editing.features), {<site>/<array>: array}; ``info['scale']``

``applied(pipe, edit)`` puts it on a pipeline and takes it off again bit for bit; an edit made for
other weights is refused. ``load_edit`` refuses a folder whose tensor files are missing, cut short
or changed since they were saved, naming the file and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..models.families import denoiser_of, family_of
from ..models.loading import model_hashes
from .features import ablating
from .methods import ERASERS, FEATURES, MASKS, WEIGHTS
from .prune import pruned


def needs(method: str) -> tuple[str, ...]:
    """The tensor files an edit of ``method`` holds (for edit folders written before ``files`` was
    recorded): its eraser's, none for an edit of no registered eraser ('unedited', 'random')."""
    return ERASERS[method].files if method in ERASERS else ()


@dataclass
class Edit:
    """One eraser's result: masks or parameters, and how it was made."""

    method: str
    info: dict = field(default_factory=dict)
    masks: dict[str, np.ndarray] | None = None
    weights: dict[str, torch.Tensor] | None = None
    features: dict[str, np.ndarray] | None = None

    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        blobs = {}
        if self.masks is not None:  # the format of analysis.save_masks: load_masks and `workbench ablate` read it
            meta = {
                "sites": list(self.masks),
                "method": self.method,
                **{k: v for k, v in self.info.items() if k != "weights_hash"},
            }
            blobs[MASKS] = save({s: torch.from_numpy(np.ascontiguousarray(m)) for s, m in self.masks.items()},
                                metadata={"workbench": json.dumps(meta, default=str)})  # fmt: skip
        if self.weights is not None:
            blobs[WEIGHTS] = save({k: v.contiguous() for k, v in self.weights.items()})
        if self.features is not None:
            blobs[FEATURES] = save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.features.items()})
        for name, data in blobs.items():
            (folder / name).write_bytes(data)
        files = {name: hashlib.sha256(data).hexdigest() for name, data in blobs.items()}
        for name in {MASKS, WEIGHTS, FEATURES} - set(files):
            (folder / name).unlink(missing_ok=True)  # a file of an earlier edit saved here is not this edit's
        text = json.dumps({"method": self.method, **{k: v for k, v in self.info.items() if k != "files"}, "files": files},
                          indent=1, default=str)  # fmt: skip
        tmp = folder / "edit.json.tmp"
        tmp.write_text(text)
        tmp.replace(folder / "edit.json")  # last and atomic: a folder with edit.json holds a whole edit
        return folder


def load_edit(folder: str | Path) -> Edit:
    """Read an edit folder written by ``Edit.save`` (``workbench erase --out``); each tensor file is
    read once, checked against its recorded checksum, then decoded."""
    from safetensors.torch import load

    folder = Path(folder)
    meta = folder / "edit.json"
    if not meta.exists():
        raise FileNotFoundError(f"{folder} holds no edit.json: make an edit with `workbench erase --out {folder}`")
    remake = f"make the edit again with `workbench erase ... --out {folder}`"
    try:
        info = json.loads(meta.read_text())
        method = info.pop("method")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{meta} is damaged (not an edit's JSON: {type(err).__name__}): {remake}") from err
    files = info.pop("files", None)
    if files is None:  # saved before its files were recorded: what is there, and what its method needs
        held = needs(method) + ((WEIGHTS,) if info.get("tune") else ())
        files = {name: None for name in (MASKS, WEIGHTS, FEATURES) if name in held or (folder / name).exists()}
    tensors, order = {}, None
    for name, digest in files.items():
        path = folder / name
        if not path.exists():
            raise ValueError(f"{path} is missing: this {method} edit needs it; {remake}")
        data = path.read_bytes()
        if digest is not None and hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"{path} is damaged (its checksum is not the one {meta.name} records): {remake}")
        try:
            tensors[name] = load(data)
            order = _saved_sites(data) if name == MASKS else order
        except Exception as err:  # safetensors' SafetensorError names no file
            raise ValueError(f"{path} could not be read ({type(err).__name__}: {err}): {remake}") from err
    masks = None
    if MASKS in tensors:  # in the order they were saved: safetensors hands them back in no fixed order
        order = order or sorted(tensors[MASKS])
        masks = {s: tensors[MASKS][s].numpy().astype(bool) for s in order}
    features = {k: v.numpy() for k, v in tensors[FEATURES].items()} if FEATURES in tensors else None
    return Edit(method, info, masks, tensors.get(WEIGHTS), features)


def _saved_sites(data: bytes) -> list[str] | None:
    """The site order a masks file's bytes record (``Edit.save``'s metadata in the safetensors
    header: 8 bytes of header length, then the JSON header), if they record one.

    The order matters: a random control drawn from a loaded edit (``random_like``) consumes its
    generator site by site, so the same seed must meet the sites in the same order in every process."""
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    sites = json.loads(header.get("__metadata__", {}).get("workbench", "{}")).get("sites")
    return list(sites) if sites else None


def check_model(pipe, edit: Edit) -> None:
    """Refuse an edit made for other weights: every component hash the edit records (the UNet and
    the text encoders) must be this pipeline's, since an edit is trained through the text encoder
    too (the language toy world shares the original's UNet, not its text encoder)."""
    family = family_of(pipe).name
    made_on = edit.info.get("model_family")
    if made_on is not None and made_on != family:
        raise ValueError(f"this edit ({edit.method}) was made on a {made_on} model and this is a {family} model: load the "
                         "model it was made for (its edit.json names it), or make the edit again on this one")  # fmt: skip
    want = edit.info.get("weights_hash") or {}
    have = model_hashes(pipe)
    for part in want:
        if part in have and want[part] != have[part]:
            raise ValueError(
                f"this edit ({edit.method}) was made for other weights ({part}: edit {want[part][:12]}, model {have[part][:12]}): "
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
    named = dict(denoiser_of(pipe).named_parameters())
    try:
        with torch.no_grad():
            for k, v in (edit.weights or {}).items():
                if k not in named or named[k].shape != v.shape:
                    raise ValueError(f"the edit's parameter {k} does not fit this denoiser: was it made for another model?")
                saved[k] = named[k].detach().clone()
                named[k].copy_(v.to(named[k].device, named[k].dtype))
        with contextlib.ExitStack() as stack:
            if edit.masks is not None:
                stack.enter_context(pruned(pipe, edit.masks))
            if edit.features is not None:
                stack.enter_context(ablating(pipe, edit.features, float(edit.info.get("scale", 0.0))))
            yield edit
    finally:
        with torch.no_grad():
            for k, v in saved.items():
                named[k].copy_(v)
