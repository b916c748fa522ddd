"""Models: loading SD-family pipelines and the toy world (models/toyworld), tiny offline builders,
the site catalogue. Attributes load their module on first use: listing prompt sets or reading a
store never pays for diffusers."""

from __future__ import annotations

from .._lazy import lazy
from . import _quiet  # noqa: F401  (filters a transformers notice before diffusers is imported)

_EXPORTS = {
    **{
        n: "loading"
        for n in (
            "TOY",
            "TOY_WORLDS",
            "ModelNotFoundError",
            "generation_defaults",
            "load_pipeline",
            "model_hashes",
            "model_id",
            "weights_hash",
        )
    },
    **{
        n: "sites"
        for n in ("DEFAULT", "FAMILIES", "Site", "SiteFilter", "catalogue", "check_weights", "module_of", "select", "weights_of")
    },
    **{n: "families" for n in ("MODEL_FAMILIES", "ModelFamily", "family_of")},
    **{n: "tiny" for n in ("sd15_random", "sd15_unet_random", "tiny_sd15", "tiny_sdxl")},
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy(__name__, globals(), {n: (f".{m}", n) for n, m in _EXPORTS.items()})
