"""Load SD-family pipelines: real checkpoints through diffusers, or the embedded toy world.

Nothing is downloaded unless asked: a missing checkpoint gives an error that says how to get it.
"""

from __future__ import annotations

import hashlib
import weakref
from pathlib import Path

import torch

from .toyworld import TOY, TOY_LANG, TOY_WORLDS  # noqa: F401 (the model ids, named where the worlds live)


class ModelNotFoundError(FileNotFoundError):
    """The weights are not on this machine."""


def load_pipeline(model: str = TOY, device: str = "cpu", dtype: torch.dtype = torch.float32, allow_download: bool = False):
    """A diffusers pipeline for ``model``: 'toy' (the embedded toy world), a local folder saved with
    save_pretrained, or a hub id already in the local cache (SD 1.x, 2.x, SDXL and relatives)."""
    if model == TOY:
        from .toyworld import load

        return load(device=device, dtype=dtype)
    if model == TOY_LANG:
        from .toyworld import WEIGHTS_LANG, load

        if not (WEIGHTS_LANG / "model_index.json").exists():
            raise ModelNotFoundError(
                f"the language world is not trained on this machine ({WEIGHTS_LANG} is missing): train it from the shipped "
                f"world with `python -m workbench.models.toyworld.train --language --out runs/toy-lang --export {WEIGHTS_LANG}`"
            )
        pipe = load(WEIGHTS_LANG, device=device, dtype=dtype)
        pipe.register_to_config(_name_or_path=TOY_LANG)
        return pipe
    import json
    import warnings

    from diffusers import DiffusionPipeline

    if _looks_like_path(model) and not Path(model).exists():
        raise ModelNotFoundError(
            f"there is no model folder {model!r}: pass a folder saved with save_pretrained (it holds model_index.json), "
            "'toy' (the embedded toy world), or a hub id already in the local cache"
        )
    index = Path(model) / "model_index.json"
    if index.exists() and json.loads(index.read_text()).get("_class_name") == "ToyWorldPipeline":
        from .toyworld import load

        return load(model, device=device, dtype=dtype)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch_dtype -> dtype rename in newer diffusers
            pipe = DiffusionPipeline.from_pretrained(model, torch_dtype=dtype, local_files_only=not allow_download)
    except (OSError, ValueError, AttributeError) as err:
        where = "folder" if Path(model).exists() else "hub id"
        raise ModelNotFoundError(
            f"could not load the {where} {model!r} ({type(err).__name__}: {str(err).splitlines()[0][:200]}). "
            "This machine does not download weights at run time: fetch them where you have network "
            f"(`huggingface-cli download {model} --local-dir DIR`), copy DIR here and pass it as the model, "
            "or pass allow_download=True (--allow-download) where a hub is reachable"
        ) from err
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _looks_like_path(model: str) -> bool:
    """A folder path rather than a hub id ('owner/name'): absolute, relative to '.', or nested."""
    return Path(model).is_absolute() or model.startswith((".", "~")) or model.count("/") > 1 or "\\" in model


#: Stable Diffusion's own sampling defaults, for pipelines that state none
SD_DEFAULTS = {"guidance": 7.5, "steps": 50}


def generation_defaults(pipe) -> dict:
    """Guidance and steps a model is meant to be sampled with: its class's ``generation_defaults``
    where it states them (the toy world, and any saved copy of it), else its model family's
    (Stable Diffusion's 50 steps at 7.5, FLUX.1-dev's 28 at 3.5, ...)."""
    from .families import MODEL_FAMILIES

    family = next((f for f in MODEL_FAMILIES.specs() if f.detect(pipe)), None)
    return {**SD_DEFAULTS, **(family.defaults if family else {}), **getattr(type(pipe), "generation_defaults", {})}


def set_image_size(pipe, size: int | None):
    """Make ``size`` the image side of every generation the workbench runs on ``pipe`` (recording,
    erasers' samples, judging) where no size is given; None: the model's own. Returns the pipeline."""
    if size is not None and (int(size) < 8 or int(size) % 8):
        raise ValueError(f"image size {size}: give a multiple of 8 pixels (the VAE's and the patches' factor), e.g. 512")
    pipe.workbench_image_size = None if size is None else int(size)
    return pipe


def image_size_of(pipe) -> int | None:
    """The image side ``set_image_size`` gave this pipeline (None: the model's own)."""
    return getattr(pipe, "workbench_image_size", None)


def run_options(pipe, size: int | None = None) -> dict:
    """The keyword arguments every generation the workbench runs adds to the pipeline call: its
    family's (``call``) and the image side (``size``, else ``set_image_size``'s; none: the model's)."""
    from .families import call_options

    size = size if size is not None else image_size_of(pipe)
    return {**call_options(pipe), **({"height": int(size), "width": int(size)} if size is not None else {})}


def default_image_size(pipe) -> int:
    """The image side a pipeline makes by default: its denoiser's sample size times the VAE's factor
    (FLUX states it as ``default_sample_size``, in latents before its 2x2 packing)."""
    from .families import denoiser_of

    if image_size_of(pipe) is not None:
        return image_size_of(pipe)
    factor = getattr(pipe, "vae_scale_factor", 8)
    if hasattr(pipe, "default_sample_size"):
        return int(pipe.default_sample_size * factor)
    return int(denoiser_of(pipe).config.sample_size * factor)


def _weighted(pipe) -> dict[str, torch.nn.Module]:
    """The components a store's sites can live in: the denoiser and the text encoders."""
    from .families import family_of

    family = family_of(pipe)
    return {c: m for c in (family.denoiser, *family.text_encoders) if (m := getattr(pipe, c, None)) is not None}


def model_hashes(pipe, dtype: torch.dtype | None = None) -> dict[str, str]:
    """The weights hash of each component a store's sites can live in (in ``dtype`` when given:
    the hashes a copy of these weights cast to it has). While an inference-time edit is on
    (``hooks.live_edits``), ``live`` names it: the pipeline computes something else."""
    from .hooks import live_edits

    out = {c: weights_hash(m, dtype) for c, m in _weighted(pipe).items()}
    if live_edits(pipe):
        out["live"] = "+".join(live_edits(pipe))
    return out


def model_digests(pipe) -> dict[str, str]:
    """The order-free digest of each component's weights (``weights_digest``), which a model folder's
    safetensors files give without building the model (``models.files.folder_digest``)."""
    return {c: weights_digest(m) for c, m in _weighted(pipe).items()}


def weights_digest(module: torch.nn.Module) -> str:
    """blake2b over every state_dict tensor in name order (name, shape, dtype, bytes): equal iff the
    weights are, and computable from the files save_pretrained writes (``models.files``)."""
    h = hashlib.blake2b(digest_size=16)
    state = module.state_dict()
    for name in sorted(state):
        t = state[name].detach().contiguous().cpu()
        h.update(f"{name}:{tuple(t.shape)}:{str(t.dtype).removeprefix('torch.')}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def model_id(pipe) -> str:
    """A readable name for the pipeline's weights: its folder / hub id, or the class name."""
    return str(getattr(pipe.config, "_name_or_path", None) or type(pipe).__name__)


_HASHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def weights_hash(module: torch.nn.Module, dtype: torch.dtype | None = None) -> str:
    """blake2b over every parameter's name, shape, dtype and bytes: equal iff the weights are.

    With ``dtype``, floating tensors are hashed as cast to it (what ``module.to(dtype)`` would
    hash), so a float32 model and the float16 copy a store was recorded with can be matched.
    Cached per module and dtype until any tensor is modified in place (torch's version counters move)."""
    state = module.state_dict()
    versions = tuple((k, v._version, v.data_ptr()) for k, v in state.items())
    cache = _HASHES.setdefault(module, {})
    cached = cache.get(dtype)
    if cached and cached[0] == versions:
        return cached[1]
    h = hashlib.blake2b(digest_size=16)
    for name, p in state.items():
        t = p.detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        t = t.contiguous().cpu()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    cache[dtype] = (versions, h.hexdigest())
    return h.hexdigest()
