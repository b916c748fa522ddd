"""Models: loading SD-family pipelines and the toy world (models/toyworld), tiny offline builders,
the site catalogue. Attributes load their module on first use: listing prompt sets or reading a
store never pays for diffusers."""

from __future__ import annotations

import importlib

from . import _quiet  # noqa: F401  (filters a transformers notice before diffusers is imported)

_EXPORTS = {
    **{
        n: "loading"
        for n in ("TOY", "ModelNotFoundError", "generation_defaults", "load_pipeline", "model_hashes", "model_id", "weights_hash")
    },
    **{
        n: "sites"
        for n in ("DEFAULT", "FAMILIES", "Site", "SiteFilter", "catalogue", "check_weights", "module_of", "select", "weights_of")
    },
    **{n: "tiny" for n in ("sd15_random", "sd15_unet_random", "tiny_sd15", "tiny_sdxl")},
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'workbench.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
