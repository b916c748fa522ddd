"""Analysis: pure functions from a recording store (+ the model's weights as data) to xarray
objects. Nothing here runs or loads a model: importing it costs numpy, xarray and zarr, never
torch, diffusers, transformers or plotly (tests/test_layers.py checks it)."""

from ..store import accessor  # noqa: F401  (``tree.wb``: sites, site_info, provenance, masks)
from .density import density, density_per_step, norm_distribution
from .io import load_masks, masks_tree, save_masks
from .maps import concept_map, neuron_maps, region_share, site_scale, strongest_neurons, top_mapped, upsample
from .masks import check_k, concept_masks, n_keep, step_mask, union
from .neurons import neuron_profile, prompt_activation, top_prompts
from .norms import norms, prompt_index, site_names
from .overlap import jaccard, overlap_matrix, overlap_per_step
from .sensitivity import concept_activity, concept_neurons, sensitivity, sensitivity_summary, wanda_activation
from .sweep import sweep, sweep_density, unpack
from .weights import abs_weight, load_weights
from .windows import parse_window, step_window

__all__ = [
    "abs_weight", "check_k", "concept_masks", "masks_tree", "density", "density_per_step", "jaccard", "load_masks", "load_weights", "n_keep",
    "norm_distribution", "norms", "overlap_matrix", "overlap_per_step", "parse_window", "prompt_index", "save_masks", "site_names",
    "step_mask", "step_window", "sweep", "sweep_density", "union", "unpack", "concept_activity", "concept_neurons", "sensitivity",
    "sensitivity_summary", "wanda_activation", "neuron_profile", "prompt_activation", "top_prompts",
    "concept_map", "neuron_maps", "region_share", "site_scale", "strongest_neurons", "top_mapped", "upsample",
]  # fmt: skip
