"""Editing: changes to a model that remove a concept. Today reversible pruning masks (prune.py)."""

from .prune import Pruner, export_pruned, pruned, random_like

__all__ = ["Pruner", "export_pruned", "pruned", "random_like"]
