"""Every eraser behind one call: ``make_edit(pipe, method, concept, options, run)`` makes the edit
of a concept (a name or a ``Concept``: docs/concepts.md) on any SD-family pipeline.

``method`` is a name of the eraser registry (``editing.methods.ERASERS``: ConceptPrune, ESD, AC,
P-ESD, P-AC, UCE and whatever plugins add); ``options`` is that eraser's options dataclass or a
mapping of its fields, checked before any work (a misspelt option names the valid ones); ``run``
(``EraseRun``, or a mapping of its fields) holds the seed, sampling and training settings. The
pipeline's weights are left as they were: the edit is data.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from ..models.families import family_of
from ..models.loading import model_hashes, model_id
from ..prompts.concepts import Concept, get_concept
from ..registry import check_choices, options_of
from .edits import Edit
from .methods import ERASERS
from .options import EraseRun
from .recipes import defaults

__all__ = ["defaults", "make_edit", "mask_density", "prepare"]


def prepare(method: str, options=None, run: EraseRun | Mapping | None = None) -> tuple:
    """(spec, options, run) checked: the eraser exists, every option is one of its fields and every
    value one of its choices. Grids call this when they are built, before any cell runs."""
    spec = ERASERS[method]
    opts = options_of(spec.options, options, f"eraser {method!r}")
    run = options_of(EraseRun, run, "an erasing run")
    check_choices(opts)
    check_choices(run)
    return spec, opts, run


def make_edit(pipe, method: str, concept: str | Concept, options=None, run: EraseRun | Mapping | None = None) -> Edit:
    """One eraser's edit of ``concept`` on ``pipe`` (whose weights are left as they were).

    Settings an eraser leaves None come from the model (``defaults(pipe, method)``): the model's
    own ``eraser_defaults`` where its class states them, else the reference code's."""
    spec, opts, run = prepare(method, options, run)
    c = get_concept(concept)
    c.check_model(model_id(pipe))
    t0 = time.time()
    info: dict = {"concept": c.name, "seed": run.seed, "model_family": family_of(pipe).name, "weights_hash": model_hashes(pipe)}
    if c.source and c.source.endswith(".toml"):
        info["concept_file"] = c.source
    info.update({k: v for k, v in (("steps", run.steps), ("guidance", run.guidance)) if v is not None})
    edit = spec.run(pipe, c, opts, run, info)
    _check_finite(edit)
    if edit.masks is not None:
        edit.info["density"] = mask_density(edit.masks)
    edit.info["seconds"] = round(time.time() - t0, 2)
    return edit


def _check_finite(edit: Edit) -> None:
    """Refuse an edit whose weights hold NaN or infinity (a broken eraser must not pass for a result)."""
    bad = [k for k, v in (edit.weights or {}).items() if not bool(v.isfinite().all())]
    if bad:
        raise ValueError(f"the {edit.method} eraser made non-finite weights ({len(bad)} tensors, e.g. {bad[0]}): its "
                         "options or its code are wrong; nothing was saved")  # fmt: skip


def mask_density(masks: dict[str, np.ndarray]) -> float:
    """Share of the masked sites' weights that are pruned."""
    return float(sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values()))
