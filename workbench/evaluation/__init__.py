"""Evaluation: the paper's metrics for real models (metrics.py), the toy world's oracle verdicts
(toy.py), declarative pruning ablations judged by the oracle (ablate.py), and every eraser behind
one call with its before/after readings (erasers.py: ``erase_and_judge``, and ``make_edit`` from editing).

Submodules load on use: ``from workbench.evaluation.metrics import ClipScorer``."""
