"""Models: loading SD-family pipelines and the toy world, tiny offline builders, the site catalogue."""

from .loading import TOY, ModelNotFoundError, load_pipeline, model_id, weights_hash
from .sites import DEFAULT, FAMILIES, Site, catalogue, module_of, select
from .tiny import sd15_random, sd15_unet_random, tiny_sd15, tiny_sdxl

__all__ = [
    "DEFAULT", "FAMILIES", "TOY", "ModelNotFoundError", "Site", "catalogue", "load_pipeline", "model_id", "module_of",
    "sd15_random", "sd15_unet_random", "select", "tiny_sd15", "tiny_sdxl", "weights_hash",
]  # fmt: skip
