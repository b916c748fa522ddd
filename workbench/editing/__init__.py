"""Editing: changes to a model that remove a concept: reversible pruning masks (prune.py), the
erasing objectives and the erasers that fine-tune or learn masks with them (learning.py), where their
training examples come from (examples.py: fresh draws as the reference code, or one cached set),
the training toolkit every eraser and attack shares (training.py), edits on disk (edits.py), the
eraser registry with one module per eraser (methods/), their options as data (options.py), what
the built-in erasers share (recipes.py) and ``make_edit`` (make.py).

Names load on first use (``_lazy``), so that the CLI reads the eraser registry without torch.
"""

from .._lazy import lazy

_EXPORTS = {
    **{n: (".edits", n) for n in ("Edit", "applied", "check_model", "load_edit")},
    **{n: (".learning", n) for n in ("LearnedMasks", "finetune", "group_params", "learn_masks")},
    **{n: (".options", n) for n in ("GROUPS", "OBJECTIVES", "PROTOCOLS", "RELAXATIONS", "EraseRun")},
    **{
        n: (".examples", n)
        for n in ("Cached", "Examples", "FreshAC", "FreshESD", "frozen_examples", "objective_loss", "preservation_examples")
    },  # fmt: skip
    **{n: (".prune", n) for n in ("Pruner", "export_pruned", "pruned", "random_like")},
    **{n: (".training", n) for n in ("batches", "prediction_loss", "trainable")},
    **{n: (".make", n) for n in ("make_edit", "prepare")},
    **{n: (".methods", n) for n in ("ERASERS", "EraserSpec", "Setting")},
}
__getattr__, __dir__ = lazy(__name__, globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
