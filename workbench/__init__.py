"""workbench: find which neurons make a concept in a diffusion UNet, and remove them.

Everything a notebook needs is importable from here: ``import workbench as wb``.
"""

from . import (
    _quiet,  # noqa: F401  (must run before diffusers is imported)
    metrics,
    plots,
)
from .ablate import Ablation, open_results
from .ablate import ablate as run_ablation  # `ablate` would hide the module workbench.ablate
from .analysis import (
    concept_masks,
    density,
    density_per_step,
    jaccard,
    load_masks,
    norm_distribution,
    norms,
    overlap_matrix,
    overlap_per_step,
    save_masks,
    step_window,
    sweep,
    sweep_density,
    union,
    unpack,
    weights_of,
)
from .calibration import Prompt, PromptSet, named_sets
from .calibration import get as prompt_set
from .demo import run_demo
from .evaluate import generate, toy_evaluate
from .metrics import Classifier, ClipScorer, NudityDetector, clip_score, fid_kid
from .models import FAMILIES, ModelNotFoundError, catalogue, load_pipeline, tiny_sd15, tiny_sdxl
from .models import select as sites
from .prune import Pruner, export_pruned, pruned, random_like
from .recorder import Recorder, Recording
from .recording import record
from .results import run_results
from .store import StoreError, describe, open_store

__version__ = "0.1.0"

__all__ = [
    "Ablation", "Classifier", "ClipScorer", "NudityDetector", "Pruner", "run_ablation", "clip_score", "export_pruned", "fid_kid",
    "generate", "metrics", "open_results", "plots", "pruned", "random_like", "run_demo", "run_results", "toy_evaluate",
    "FAMILIES", "ModelNotFoundError", "Prompt", "PromptSet", "Recorder", "Recording", "StoreError", "catalogue",
    "concept_masks", "density", "density_per_step", "describe", "jaccard", "load_masks", "load_pipeline", "named_sets",
    "norm_distribution", "norms", "open_store", "overlap_matrix", "overlap_per_step", "prompt_set", "record",
    "save_masks", "sites", "step_window", "sweep", "sweep_density", "tiny_sd15", "tiny_sdxl", "union", "unpack",
    "weights_of",
]  # fmt: skip
