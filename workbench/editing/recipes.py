"""What the built-in erasers share, from options to a trained edit: the model's default settings,
the frozen model's example source (fresh draws or one cached set), ConceptPrune's calibration
masks, and the train / held-out loss kept in every trained edit's info. The erasers themselves
are the modules of ``editing.methods``; ``editing.make.make_edit`` runs one.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

import numpy as np

from ..models.sites import default_sites
from .edits import Edit
from .examples import HELDOUT_SEED, Cached, FreshAC, FreshESD, frozen_examples, objective_loss, preservation_examples
from .learning import finetune, learn_masks
from .options import FROM_CONCEPTPRUNE, GUIDED_AWAY, EraseRun


def defaults(pipe, method: str) -> dict:
    """The settings an eraser uses on ``pipe`` when not given: the model's own ``eraser_defaults``
    where its class states them, else the reference code's (its spec's ``reference``). A model
    states them per options class (``Training``, ``FineTune``, ``Anchors``...): an eraser takes
    those of every class its options are built on, the most derived last."""
    from .methods import ERASERS

    spec = ERASERS[method]
    own = getattr(type(pipe), "eraser_defaults", {})
    out = dict(spec.reference)
    for cls in reversed(spec.options.__mro__):
        out.update(own.get(cls.__name__, {}))
    return out


def conceptprune_masks(pipe, concept, k: float, t_hat: int, run: EraseRun) -> dict[str, np.ndarray]:
    """ConceptPrune's skilled masks of a concept: its calibration pairs recorded (under
    ``run.workdir``, or a temporary folder), then the masks at ``k`` and ``t_hat``. Several
    concepts at once (``prompts.concepts.combine``): the union of each one's mask, each recorded
    in a store of its own."""
    from ..prompts.concepts import parts_of

    folder = Path(run.workdir) if run.workdir is not None else Path(tempfile.mkdtemp(prefix="conceptprune-"))
    parts = parts_of(concept)
    if len(parts) == 1:
        return _skilled(pipe, concept, k, t_hat, run, folder / "calibration.zarr")
    union: dict[str, np.ndarray] = {}
    for part in parts:
        for site, m in _skilled(pipe, part, k, t_hat, run, folder / f"calibration-{part.name}.zarr").items():
            union[site] = m | union[site] if site in union else m
    return union


def _skilled(pipe, concept, k: float, t_hat: int, run: EraseRun, path: Path) -> dict[str, np.ndarray]:
    from ..analysis import concept_masks
    from ..models.sites import weights_of
    from ..prompts import PromptSet
    from ..recording import record
    from ..store import open_store
    from ..store.shards import waiting_lock
    from .prune import as_dict

    target, reference = list(concept.target), list(concept.anchor)
    path.parent.mkdir(parents=True, exist_ok=True)
    # shards of a grid share a calibration folder: the first records, the others wait and reuse it
    with waiting_lock(path, "calibrating"):
        store = record(pipe, PromptSet(target + reference), path, steps=run.steps, guidance=run.guidance, size=run.size,
                       progress=run.progress)  # fmt: skip
    tree = open_store(store)
    return as_dict(concept_masks(tree, weights_of(pipe, tree), target[0].set, reference[0].set, k=k, t_hat=t_hat))


def _joined(sites) -> str:
    return sites if isinstance(sites, str) else ",".join(sites)


class Trained:
    """One trained eraser's run: its settings resolved against the model's defaults, the example
    source of its objective (``objective``: 'esd' or 'ac') and its preservation set."""

    def __init__(self, pipe, method: str, objective: str, concept, options, run: EraseRun, info: dict):
        self.pipe, self.method, self.objective, self.options, self.run, self.info = pipe, method, objective, options, run, info
        d = self.d = defaults(pipe, method)
        self.iterations, self.lr, self.batch = (
            options.iterations or d["iterations"],
            options.lr or d["lr"],
            options.batch or d["batch"],
        )
        self.eta = getattr(options, "eta", 1.0)
        target, reference = list(concept.target), list(concept.anchor)
        texts, seeds, anchors = [p.text for p in target], [p.seed for p in target], [p.text for p in reference]
        self.source = self._source(texts, seeds, anchors)
        self.keep = (preservation_examples(pipe, anchors, [p.seed for p in reference], run.steps, run.guidance, run.size)
                     if options.preserve else None)  # fmt: skip
        info.update(objective=objective, eta=self.eta, iterations=self.iterations, lr=self.lr, batch=self.batch,
                    preserve=options.preserve, examples=options.examples, precision=run.precision)  # fmt: skip

    def _source(self, texts, seeds, anchors):
        pipe, run, opts, d = self.pipe, self.run, self.options, self.d
        if opts.examples == "cached":  # the old protocol: the model's own guidance unless given
            kw = {"anchors": anchors, "eta": self.eta, "steps": run.steps, "guidance": run.guidance, "size": run.size}
            ex = frozen_examples(pipe, texts, seeds, self.objective, **kw)
            self.info.update(examples_cached=len(ex))
            return Cached(ex, self.batch, run.seed,
                          partial(frozen_examples, pipe, texts, [s + HELDOUT_SEED for s in seeds], self.objective, **kw))  # fmt: skip
        g = run.guidance if run.guidance is not None else d.get("guidance")
        if self.objective == GUIDED_AWAY:
            source = FreshESD(
                pipe, texts, eta=self.eta, steps=run.steps, guidance=g, batch=self.batch, seed=run.seed, size=run.size
            )
            self.info.update(sampling_guidance=source.guidance)
            return source
        source = FreshAC(pipe, texts, anchors, pool=opts.pool or d.get("pool", 1000), steps=run.steps or d.get("pool_steps"),
                         guidance=g, batch=self.batch, seed=run.seed, size=run.size)  # fmt: skip
        self.info.update(sampling_guidance=source.guidance, pool=source.pool, pool_steps=source.steps)
        return source

    def finetune(self, group: str | None) -> Edit:
        """Fine-tune a parameter group (the options' ``group``, else the default's): an edit of weights."""
        group = group or self.d.get("group", "esd-x")
        run = self.run
        weights = finetune(self.pipe, self.source, group=group, iterations=self.iterations, lr=self.lr, batch=self.batch,
                           seed=run.seed, preserve=self.keep, progress=run.progress, precision=run.precision,
                           checkpointing=run.checkpointing)  # fmt: skip
        self.info.update(group=group, parameters=int(sum(v.numel() for v in weights.values())))
        return self.gap(Edit(self.method, self.info, weights=weights))

    def learn_masks(self, concept) -> Edit:
        """Learn a pruning mask (the options' sites, k, relaxation, init; ``tune`` trains weights too)."""
        o, run = self.options, self.run
        start = conceptprune_masks(self.pipe, concept, o.k, o.t_hat, run) if o.init == FROM_CONCEPTPRUNE else o.init
        sites = o.sites.split(",") if o.sites else default_sites(self.pipe)
        learned = learn_masks(self.pipe, self.source, sites=sites, k=o.k, relaxation=o.relaxation, init=start,
                              iterations=self.iterations, lr=self.lr, batch=self.batch, seed=run.seed, preserve=self.keep,
                              tune=o.tune, tune_lr=o.tune_lr, progress=run.progress, precision=run.precision,
                              checkpointing=run.checkpointing)  # fmt: skip
        self.info.update(k=o.k, relaxation=o.relaxation, init=o.init, site_filter=o.sites or _joined(sites))
        if o.tune is not None:
            self.info.update(tune=o.tune, tune_lr=o.tune_lr, parameters=int(sum(v.numel() for v in learned.weights.values())))
        return self.gap(learned.edit(self.method, self.info))

    def gap(self, edit: Edit) -> Edit:
        """The objective's loss where it trained and on seeds it never saw, kept in the edit's info."""
        n = self.run.gap
        if n:
            train, held = self.source.train(n, self.iterations), self.source.heldout(n, self.iterations)
            edit.info.update(train_loss=objective_loss(self.pipe, train, edit), heldout_loss=objective_loss(self.pipe, held, edit),
                             gap_draws=len(train))  # fmt: skip
        return edit
