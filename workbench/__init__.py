"""workbench: find which neurons make a concept in a diffusion UNet, and remove them.

Everything a notebook needs is one attribute away: ``import workbench as wb; wb.concept_masks``.
Attributes load their module on first use (PEP 562), so ``import workbench`` is cheap and a
notebook that only reads stores never imports diffusers, transformers or plotly.

Layers, bottom to top (imports point down only; tests/test_layers.py checks it):
prompts -> models (toyworld inside) -> store -> recording -> analysis -> editing -> evaluation
-> attacks -> reports -> cli. The store sits below recording: it knows sites and prompts, not
the recorder (``StoreWriter.write`` takes the recorder's ``Recording`` by its attributes).
"""

from __future__ import annotations

from ._lazy import lazy

__version__ = "0.1.0"

#: public name -> (module, attribute); attribute None means the module itself
_EXPORTS: dict[str, tuple[str, str | None]] = {
    # prompts
    **{n: ("workbench.prompts", n) for n in ("Prompt", "PromptSet", "named_sets", "from_file", "paired")},
    "prompt_set": ("workbench.prompts", "get"),
    **{n: ("workbench.prompts.concepts", n) for n in ("Concept", "get_concept", "named_concepts")},
    # models
    **{
        n: ("workbench.models", n)
        for n in ("FAMILIES", "ModelNotFoundError", "catalogue", "load_pipeline", "tiny_sd15", "tiny_sdxl", "weights_of")
    },
    "sites": ("workbench.models", "select"),
    # store and recording
    **{
        n: ("workbench.store", n)
        for n in ("StoreError", "describe", "open_store", "check_store", "reduce_store", "push", "open_maps")
    },
    **{n: ("workbench.recording", n) for n in ("Recorder", "Recording", "record", "finalise", "shard_from_env", "record_maps")},
    # features: token samples, SAEs
    **{n: ("workbench.store.samples", n) for n in ("open_samples",)},
    **{n: ("workbench.store.saes", n) for n in ("SAE", "load_sae", "save_sae")},
    **{n: ("workbench.recording.samples", n) for n in ("SampleOptions", "record_samples")},
    **{n: ("workbench.recording.sae", n) for n in ("SAEOptions", "StoreSource", "ArraySource", "train_sae")},
    **{
        n: ("workbench.analysis.features", n)
        for n in (
            "unit_activations",
            "feature_scores",
            "top_units",
            "auroc",
            "firing_rate",
            "feature_map",
            "unit_overlap",
            "top_prompts_of",
        )
    },
    # analysis
    **{
        n: ("workbench.analysis", n)
        for n in (
            "concept_masks",
            "density",
            "density_per_step",
            "jaccard",
            "load_masks",
            "load_weights",
            "norm_distribution",
            "norms",
            "overlap_matrix",
            "overlap_per_step",
            "parse_window",
            "save_masks",
            "step_window",
            "sweep",
            "sweep_density",
            "sensitivity",
            "sensitivity_summary",
            "concept_activity",
            "concept_neurons",
            "neuron_profile",
            "prompt_activation",
            "top_prompts",
            "concept_map",
            "neuron_maps",
            "region_share",
            "site_scale",
            "strongest_neurons",
            "top_mapped",
            "union",
            "unpack",
        )
    },  # fmt: skip
    # editing
    **{
        n: ("workbench.editing", n)
        for n in (
            "Edit",
            "FreshAC",
            "FreshESD",
            "Pruner",
            "applied",
            "export_pruned",
            "finetune",
            "frozen_examples",
            "learn_masks",
            "load_edit",
            "objective_loss",
            "pruned",
            "random_like",
        )
    },  # fmt: skip
    # evaluation
    "metrics": ("workbench.evaluation.metrics", None),
    **{n: ("workbench.evaluation.metrics", n) for n in ("Classifier", "ClipScorer", "NudityDetector", "clip_score", "fid_kid")},
    **{n: ("workbench.evaluation.toy", n) for n in ("generate", "toy_evaluate")},
    **{n: ("workbench.evaluation.ablate", n) for n in ("Ablation", "open_results")},
    "run_ablation": ("workbench.evaluation.ablate", "ablate"),
    **{n: ("workbench.evaluation.erasers", n) for n in ("erase_and_judge", "make_edit")},
    **{n: ("workbench.editing", n) for n in ("ERASERS", "EraseRun")},
    **{n: ("workbench.evaluation.judges", n) for n in ("Judge", "Verdicts", "make_judge")},
    "evaluate": ("workbench.evaluation.judging", "evaluate"),
    "harm": ("workbench.evaluation.harm", "harm"),
    # attacks
    "attacks": ("workbench.attacks", None),
    **{n: ("workbench.attacks", n) for n in ("attack", "wilson")},
    # reports
    "plots": ("workbench.reports.plots", None),
    **{n: ("workbench.reports.explorer", n) for n in ("Explorer", "explore")},
    **{n: ("workbench.reports.maps", n) for n in ("map_grid", "top_images")},
    **{n: ("workbench.reports.frames", n) for n in ("attacks_frame", "cells_frame", "prompts_frame", "results_frame")},
    **{n: ("workbench.reports.reactivation", n) for n in ("compare_reactivation", "run_reactivation")},
    "run_demo": ("workbench.reports.demo", "run_demo"),
    "run_results": ("workbench.reports.results", "run_results"),
    "run_robustness": ("workbench.reports.robustness", "run_robustness"),
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy(__name__, globals(), _EXPORTS)
