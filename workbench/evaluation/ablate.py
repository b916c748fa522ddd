"""Declarative ablation sweeps: site family x k x step window x mask kind x concept, each cell
pruned, regenerated with fixed seeds and judged: by the oracle on the toy world (unions too), by
the concept's judge (or ``Ablation.judge``) on any other model, on its held-out prompts.

Results are an xarray Dataset in a Zarr store, one cell written as soon as it is measured, with
a ``done`` flag, so an interrupted sweep started again computes only the missing cells.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from ..analysis import concept_masks, density, parse_window, step_window, union
from ..analysis.norms import prompt_index
from ..editing import pruned, random_like
from ..models import weights_of
from ..models.families import denoiser_of
from ..store import consolidate, jsonable
from ..store.shards import running_shard, shard_of, shared_step, wait_for_others
from .judging import evaluate
from .toy import eval_images, toy_evaluate

METRICS = ("concept_rate", "degraded_rate", "shape", "colour", "texture", "scene", "target_other", "fid", "density", "clip_score")
#: metrics added after the first stores: an older store gets them, NaN-filled, when resumed
LATER = ("clip_score",)
KINDS = ("skilled", "unskilled", "random")


@dataclass
class Ablation:
    """What to sweep. Concepts: toy-world values ('striped', 'circle'), 'a+b+c' for the union of
    their masks (paper A.5). Reference: a prompt set, or several comma-separated; a concept's own
    set is dropped from it, so 'plain,striped,dotted,checkered' contrasts each texture with the
    rest. Windows: 'first:T' (the paper's t_hat = T), 'all', 'last:N'."""

    concepts: list[str] = field(default_factory=lambda: ["striped"])
    reference: str = "plain"
    families: list[str] = field(default_factory=lambda: ["ffn2"])
    ks: list[float] = field(default_factory=lambda: [2.0])
    windows: list[str] = field(default_factory=lambda: ["first:10"])
    kinds: list[str] = field(default_factory=lambda: ["skilled", "random"])
    steps: int = 25
    n_per: int = 1
    #: None: the toy oracle on the toy world, else each concept's own judge; or a judge spec for all
    judge: str | None = None

    def coords(self) -> dict:
        return {
            "concept": self.concepts,
            "family": self.families,
            "k": [float(k) for k in self.ks],
            "window": self.windows,
            "kind": self.kinds,
        }


def members(concept: str) -> list[str]:
    """'striped+dotted' -> ['striped', 'dotted']."""
    return [c.strip() for c in concept.split("+") if c.strip()]


def reference_for(concept: str, reference: str) -> list[str]:
    """The reference sets for one concept: the given ones minus the concept's own."""
    refs = [r.strip() for r in reference.split(",") if r.strip() and r.strip() != concept]
    if not refs:
        raise ValueError(f"the reference {reference!r} leaves no set to contrast {concept!r} with: name another prompt set")
    return refs


def ablate(pipe, oracle, tree: xr.DataTree, spec: Ablation, out: str | Path, progress: bool = True,
           shard: tuple[int, int] | None = None) -> xr.Dataset:  # fmt: skip
    """Run (or resume) the sweep into ``out`` and return the results Dataset (+ the unpruned baseline).
    ``shard`` (i, n): this process measures its share of the cells first, then, once no other shard
    of ``out`` runs, whatever is still missing (each cell its own chunk; the shared steps, creating
    the store and marking a cell done, under a waiting lock)."""
    with running_shard(out, shard):
        return _ablate(pipe, oracle, tree, spec, Path(out), progress, shard)


def _ablate(pipe, oracle, tree: xr.DataTree, spec: Ablation, out: Path, progress: bool, shard) -> xr.Dataset:
    """``ablate`` with its shard's lock held."""
    from tqdm.auto import tqdm

    for k in spec.kinds:
        if k not in KINDS:
            raise ValueError(f"unknown mask kind {k!r}: use {KINDS}")
    for c in spec.concepts:  # every member needs its own set and a reference left after dropping it
        for m in members(c):
            prompt_index(tree, [m, *reference_for(m, spec.reference)])
    for w in spec.windows:  # check every window against the recorded steps before creating the store
        step_window(tree.sizes["step"], *parse_window(w))
    info = tree.wb.site_info
    for fam in spec.families:
        if not any(v["family"] == fam for v in info.values()):
            raise ValueError(f"the store has no {fam!r} sites: record them with `workbench record --sites {fam},...`")
    coords = spec.coords()
    shape = tuple(len(v) for v in coords.values())
    dims = list(coords)
    with shared_step(out, shard, "setup"):
        group = _open_results(out, spec, coords, shape, dims)
    weights = weights_of(pipe, tree)
    toy = oracle is not None and spec.judge in (None, "toy")
    judged = {} if toy else _judged(spec, oracle, str(denoiser_of(pipe).device))
    with shared_step(out, shard, "setup"):
        group = zarr.open_group(str(out), mode="r+", use_consolidated=False)  # another shard may have set the baseline
        _baseline(pipe, oracle, spec, group, toy, judged)
    every = list(itertools.product(*(range(n) for n in shape)))

    def measure(cells: list, desc: str) -> None:
        done = group["done"][...]
        for ix in tqdm([ix for ix in cells if not done[ix]], desc=desc, disable=not progress):
            values = _cell(pipe, oracle, tree, spec, weights, coords, dims, shape, ix, toy, judged)
            for m in METRICS:
                group[m][ix] = values.get(m, float("nan"))
            with shared_step(out, shard, "done"):
                group["done"][ix] = True  # one chunk for every flag: set one at a time

    measure(shard_of(every, shard), "ablation cells" if shard is None else f"ablation cells, shard {shard[0]}/{shard[1]}")
    wait_for_others(out, shard, lambda: bool(group["done"][...].all()))
    measure(every, "ablation cells other shards left")
    with shared_step(out, shard, "setup"):
        consolidate(out)
    return open_results(out)


def _baseline(pipe, oracle, spec: Ablation, group, toy: bool, judged: dict) -> None:
    """The unpruned model's readings of every concept, once per store (``baseline`` attrs)."""
    if "baseline_concept_rate" not in group.attrs:
        images = eval_images(pipe, spec.n_per, spec.steps) if toy else None  # the unpruned model's images serve every concept
        base = {}
        for c in spec.concepts:
            if toy:
                r = toy_evaluate(pipe, oracle, None, members(c), n_per=spec.n_per, steps=spec.steps, images=images)
                base[c] = {**r.summary(), "target_other": r.target_other}
            else:
                base[c] = evaluate(pipe, judged[c][0], judged[c][1], steps=spec.steps).summary()
        group.attrs["baseline"] = base
        group.attrs["baseline_concept_rate"] = {c: b["concept_rate"] for c, b in base.items()}


def _cell(pipe, oracle, tree, spec: Ablation, weights, coords: dict, dims: list, shape: tuple, ix: tuple, toy: bool,
          judged: dict) -> dict:  # fmt: skip
    """One cell's masks made, pruned, generated and judged: its metrics."""
    concept, fam, k, window, kind = (coords[d][i] for d, i in zip(dims, ix))
    sites = tree.wb.of_family(fam)
    t_hat, win = parse_window(window)
    mkind = "unskilled" if kind == "unskilled" else "skilled"
    masks = union(
        *(
            concept_masks(
                tree, weights, c, reference_for(c, spec.reference), k=k, t_hat=t_hat, window=win, kind=mkind, sites=sites
            )
            for c in members(concept)
        )
    )
    if kind == "random":
        masks = random_like(masks, seed=int(np.ravel_multi_index(ix, shape)))
        dens = sum(int(m.sum()) for m in masks.values()) / sum(m.size for m in masks.values())
    else:
        dens = float(density(masks)["overall"])
    with pruned(pipe, masks):
        if toy:
            r = toy_evaluate(pipe, oracle, None, members(concept), n_per=spec.n_per, steps=spec.steps)
            values = {"concept_rate": r.concept_rate, "degraded_rate": r.degraded_rate, **r.other_accuracy,
                      "target_other": r.target_other, "fid": r.fid}  # fmt: skip
        else:
            g = evaluate(pipe, judged[concept][0], judged[concept][1], steps=spec.steps)
            values = {"concept_rate": g.concept_rate, "degraded_rate": g.degraded_rate, **g.other_accuracy, **g.utility}
    values["density"] = dens
    return values


def _judged(spec: Ablation, oracle, device: str) -> dict:
    """concept -> (its Concept, its judge) for a model other than the toy world (no unions)."""
    from ..prompts.concepts import concept_for_set
    from .judges import judge_of

    out = {}
    for c in spec.concepts:
        if len(members(c)) > 1:
            raise ValueError(f"{c!r}: unions are judged on the toy world only; give one concept at a time on this model")
        concept = concept_for_set(c, n_per=spec.n_per, judge=spec.judge)
        out[c] = (concept, judge_of(oracle if spec.judge is None and concept.judge == "toy" else None, concept, device))
    return out


def _spec(spec: Ablation) -> dict:
    """The spec as stored (a judge left at its default is not written, so older stores resume)."""
    d = jsonable(asdict(spec))
    if d.get("judge") is None:
        d.pop("judge", None)
    return d


def _open_results(out: Path, spec: Ablation, coords: dict, shape: tuple, dims: list) -> zarr.Group:
    if (out / "zarr.json").exists():
        group = zarr.open_group(str(out), mode="r+", use_consolidated=False)
        if group.attrs.get("spec") != _spec(spec):
            raise ValueError(
                f"{out} holds another ablation ({group.attrs.get('spec')}): choose a new --out or the same settings to resume"
            )
        for m in LATER:
            if m not in group and "concept_rate" in group:
                group.create_array(m, shape=shape, chunks=(1,) * len(shape), dtype="float64", dimension_names=dims,
                                   fill_value=float("nan"))  # fmt: skip
        missing = [m for m in METRICS if m not in group]
        if missing:
            raise ValueError(f"{out} was written by an older workbench without {missing}: delete it or choose a new --out")
        return group
    group = zarr.open_group(str(out), mode="w", zarr_format=3)
    group.attrs["spec"] = _spec(spec)
    for d, v in coords.items():
        dtype = "float64" if d == "k" else str
        group.create_array(d, shape=(len(v),), dtype=dtype, dimension_names=[d], fill_value=0.0 if d == "k" else "")[:] = (
            np.array(v, dtype=object if dtype is str else None)
        )
    for m in METRICS:
        group.create_array(
            m, shape=shape, chunks=(1,) * len(shape), dtype="float64", dimension_names=dims, fill_value=float("nan")
        )
    group.create_array("done", shape=shape, chunks=shape, dtype="bool", dimension_names=dims, fill_value=False)
    return group


def open_results(out: str | Path) -> xr.Dataset:
    """An ablation's results: metrics over (concept, family, k, window, kind); attrs hold the spec and baseline."""
    ds = xr.open_zarr(str(out), consolidated=False).load()
    return ds.assign_coords({d: ds[d].astype(object) for d in ("concept", "family", "window", "kind")})
