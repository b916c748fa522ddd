"""Editing: changes to a model that remove a concept: reversible pruning masks (prune.py), the
erasing objectives and the erasers that fine-tune or learn masks with them (erase.py), where their
training examples come from (examples.py: fresh draws as the reference code, or one cached set), the training
toolkit every eraser and attack shares (training.py), and edits on disk (edits.py)."""

from .edits import Edit, applied, check_model, load_edit
from .erase import (
    GROUPS,
    OBJECTIVES,
    RELAXATIONS,
    LearnedMasks,
    finetune,
    group_params,
    learn_masks,
)
from .examples import PROTOCOLS, Cached, Examples, FreshAC, FreshESD, frozen_examples, objective_loss, preservation_examples
from .prune import Pruner, export_pruned, pruned, random_like
from .training import batches, prediction_loss, trainable

__all__ = [
    "GROUPS",
    "OBJECTIVES",
    "PROTOCOLS",
    "RELAXATIONS",
    "Cached",
    "Edit",
    "Examples",
    "FreshAC",
    "FreshESD",
    "LearnedMasks",
    "Pruner",
    "applied",
    "batches",
    "check_model",
    "export_pruned",
    "finetune",
    "frozen_examples",
    "group_params",
    "learn_masks",
    "load_edit",
    "objective_loss",
    "prediction_loss",
    "preservation_examples",
    "pruned",
    "random_like",
    "trainable",
]
