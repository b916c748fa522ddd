"""Analysis: pure functions from a recording store (+ the model's weights) to xarray objects."""

from .density import density, density_per_step, norm_distribution
from .io import load_masks, save_masks
from .masks import concept_masks, n_keep, step_mask, step_window, union, weights_of
from .norms import norms, prompt_index
from .overlap import jaccard, overlap_matrix, overlap_per_step
from .sweep import sweep, sweep_density, unpack

__all__ = [
    "concept_masks", "density", "density_per_step", "jaccard", "load_masks", "n_keep", "norm_distribution", "norms",
    "overlap_matrix", "overlap_per_step", "prompt_index", "save_masks", "step_mask", "step_window", "sweep",
    "sweep_density", "union", "unpack", "weights_of",
]  # fmt: skip
