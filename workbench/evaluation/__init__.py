"""Evaluation: the paper's metrics for real models (metrics.py), the toy world's oracle verdicts
(toy.py) and declarative pruning ablations judged by the oracle (ablate.py).

Submodules load on use: ``from workbench.evaluation.metrics import ClipScorer``."""
