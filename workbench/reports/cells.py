"""The sweep's cells: one eraser at one strength and seed (``Cell``), the grid of them, making and
judging one (``run_cell``), and the numbers read from a judged cell (``worst``, ``mean_over_seeds``).
The robustness page, the attack table and the reactivation view all build on these."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..editing.edits import Edit, load_edit
from ..editing.prune import random_like
from ..evaluation.erasers import erase_and_judge, make_edit, mask_density
from ..evaluation.harm import harm


@dataclass(frozen=True)
class Cell:
    """One eraser at one strength and seed."""

    method: str
    options: dict = field(default_factory=dict, hash=False, compare=False)
    seed: int = 0
    label: str = ""
    name: str = ""  # the row's method in the tables and figure when it is a variant ('esd+preserve')

    @property
    def draw(self) -> int:
        """Which draw of a random control (0 for every other cell)."""
        return int(self.options.get("draw", 0))

    @property
    def draw_seed(self) -> int:
        """The seed of a random control's mask: the cell's seed for the first draw (the cells made
        before controls were drawn several times stay valid), then one apart by 1000 per draw."""
        return self.seed + 1000 * self.draw

    @property
    def base_key(self) -> str:
        """A random control's P-ESD cell, whose mask sizes it copies."""
        return Cell("pesd", {k: v for k, v in self.options.items() if k != "draw"}, self.seed).key

    @property
    def key(self) -> str:
        opts = "-".join(f"{k}{v}" for k, v in sorted(self.options.items()))
        return f"{self.method}-{opts}-s{self.seed}".replace(".", "p")


#: random controls drawn per (setting, seed): the table reads their mean and spread
DRAWS = 5
#: P-AC's one k in every grid, the quick one included (the attack table names it by this k)
PAC_K = 20.0


def _pac(seed: int, iterations: int) -> Cell:
    """P-AC's one cell of a seed."""
    return Cell("pac", {"k": PAC_K, "iterations": iterations}, seed, f"k={PAC_K:g}%")


def _controls(options: dict, seed: int, label: str, name: str = "") -> list[Cell]:
    return [Cell("random", {**options, **({"draw": d} if d else {})}, seed, label, name) for d in range(DRAWS)]


def grid(concept: str = "striped", seeds: tuple[int, ...] = (0,), quick: bool = False, core: bool = False,
         variants: bool = False, iterations: int | None = None, cached: bool = False,
         every_eraser: bool = False) -> list[Cell]:  # fmt: skip
    """The sweep: ConceptPrune over k (deterministic), ESD-x and AC over the learning rate, P-ESD and
    P-AC over k, and a random mask of each P-ESD mask's size. ``core`` keeps one or two settings of
    each trained eraser (the other concepts' run); ``quick`` is a smoke run at tiny budgets.
    With several seeds, the core grid repeats only ESD-x's and P-ESD's main settings on the others
    (the random controls and the other erasers: first seed). ``variants`` adds, for the first seed, the preservation term (ESD-x, P-ESD), ConceptPrune's mask
    as P-ESD's start, and P-ESD's mask trained together with ESD-x weights. Trained erasers draw
    fresh examples (the reference protocol); ``cached`` adds, for every seed, the main settings
    trained on one cached set (rows 'esd cached', ...: the deviation beside the reference).
    ``every_eraser``: the core grid's other seeds repeat AC's and P-AC's main settings too (every
    trained eraser then has a mean and spread over the seeds)."""
    # the protocol is part of every trained cell's key: cells made before it (cached) are never read as fresh
    cells = [c if c.method == "conceptprune" else replace(c, options={"examples": "fresh", **c.options})
             for c in _grid(seeds, quick, core, variants, iterations, every_eraser)]  # fmt: skip
    if cached:
        main = {("esd", "lr=0.0001"), ("pesd", "k=10%")}
        cells += [replace(c, options={**c.options, "examples": "cached"}, name=f"{c.method} cached")
                  for c in list(cells) if (c.method, c.label) in main and not c.name]  # fmt: skip
    return cells


def _grid(seeds: tuple[int, ...], quick: bool, core: bool, variants: bool, iterations: int | None,
          every_eraser: bool = False) -> list[Cell]:  # fmt: skip
    ks = (2.0, 10.0) if quick else (1.0, 2.0, 5.0, 10.0, 20.0)
    lrs = (1e-4,) if quick else (1e-4, 3e-4) if core else (3e-5, 1e-4, 3e-4)
    pks = (10.0,) if quick or core else (2.0, 10.0, 20.0)
    its = iterations or (20 if quick else 200)
    cells = [Cell("conceptprune", {"k": k}, 0, f"k={k:g}%") for k in ks]
    for seed in seeds:
        if core and seed != seeds[0]:  # the core grid's other seeds repeat its main ESD-x and P-ESD settings
            cells += [Cell("esd", {"lr": lrs[0], "iterations": its}, seed, f"lr={lrs[0]:g}"),
                      Cell("pesd", {"k": pks[-1], "iterations": its}, seed, f"k={pks[-1]:g}%")]  # fmt: skip
            if every_eraser:
                cells += [Cell("ac", {"lr": lrs[0], "iterations": its}, seed, f"lr={lrs[0]:g}"), _pac(seed, its)]
            continue
        cells += [Cell("esd", {"lr": lr, "iterations": its}, seed, f"lr={lr:g}") for lr in lrs]
        cells += [Cell("ac", {"lr": lr, "iterations": its}, seed, f"lr={lr:g}") for lr in (lrs[:1] if core else lrs)]
        cells += [Cell("pesd", {"k": k, "iterations": its}, seed, f"k={k:g}%") for k in pks]
        cells += [_pac(seed, its)]
        if not (quick or core):  # the other relaxations, an init, ESD-u
            cells += [
                Cell("pesd", {"k": 10.0, "iterations": its, "relaxation": r}, seed, f"k=10% {r}")
                for r in ("hard-concrete", "sigmoid")
            ]
            cells += [Cell("pesd", {"k": 10.0, "iterations": its, "init": "wanda"}, seed, "k=10% init wanda")]
            cells += [Cell("esd", {"lr": 3e-5, "iterations": its, "group": "esd-u"}, seed, "ESD-u lr=3e-05")]
        cells += [c for k in pks for c in _controls({"k": k, "iterations": its}, seed, f"k={k:g}%")]
    if variants:
        seed, pk = seeds[0], pks[-1] if quick else 10.0
        cells += [Cell("esd", {"lr": lr, "iterations": its, "preserve": True}, seed, f"lr={lr:g}", "esd+preserve")
                  for lr in ((1e-4,) if quick else (1e-4, 3e-4))]  # fmt: skip
        cells += [
            Cell("pesd", {"k": pk, "iterations": its, "preserve": True}, seed, f"k={pk:g}%", "pesd+preserve"),
            Cell("pesd", {"k": pk, "iterations": its, "init": "conceptprune"}, seed, f"k={pk:g}%", "pesd init conceptprune"),
        ]
        cells += [Cell("pesd", {"k": pk, "iterations": its, "tune": "esd-x", "tune_lr": lr}, seed, f"k={pk:g}% lr={lr:g}",
                       "pesd+esd-x") for lr in ((1e-4,) if quick else (3e-5, 1e-4))]  # fmt: skip
        if not quick:  # other parameter groups for the mask, and preservation between ESD-x's two lrs
            cells += [Cell("pesd", {"k": pk, "iterations": its, "sites": "ffn1"}, seed, f"k={pk:g}%", "pesd on ffn1")]
            # the mask over the cross-attention values erased most within the harm budget: every seed, and k = 20 %
            cells += [Cell("pesd", {"k": pk, "iterations": its, "sites": "attn2.to_v"}, s, f"k={pk:g}%", "pesd on attn2.to_v")
                      for s in seeds]  # fmt: skip
            cells += [Cell("pesd", {"k": 20.0, "iterations": its, "sites": "attn2.to_v"}, seed, "k=20%", "pesd on attn2.to_v")]
            cells += _controls({"k": pk, "iterations": its, "sites": "attn2.to_v"}, seed, f"k={pk:g}%", "random on attn2.to_v")
            cells += [Cell("esd", {"lr": 2e-4, "iterations": its, "preserve": True}, seed, "lr=0.0002", "esd+preserve")]
    return cells


def run_cell(pipe, oracle, cell: Cell, concept, work: Path, n_per: int, setting: dict | None = None) -> dict:
    """Make the cell's edit (saved under work/edits), judge it; ``wall`` is the seconds of both.
    ``oracle``: the judge (any ``judge_of`` accepts); ``setting``: steps, guidance, t_hat for every edit."""
    setting = dict(setting or {})
    t0 = time.time()
    if cell.method == "random":  # the control: per row as many entries as P-ESD's mask, at random
        base = load_edit(work / "edits" / cell.base_key)
        info = {k: v for k, v in base.info.items() if k not in ("train_loss", "heldout_loss", "gap_draws")}  # it trains nothing
        edit = Edit("random", {**info, "seconds": 0.0, "draw": cell.draw}, masks=random_like(base.masks, seed=cell.draw_seed))
        edit.info["density"] = mask_density(edit.masks)
    else:
        options = {k: v for k, v in cell.options.items() if k != "draw"}
        edit = make_edit(pipe, cell.method, concept, seed=cell.seed, workdir=work / "calibration", progress=False,
                         **{**setting, **options})  # fmt: skip
        edit.save(work / "edits" / cell.key)
    judged = {k: setting[k] for k in ("steps", "guidance") if k in setting}
    return {
        **erase_and_judge(pipe, oracle, edit, n_per=n_per, concept=concept if not isinstance(concept, str) else None, **judged),
        **({"method": cell.name} if cell.name else {}),
        "label": cell.label,
        "seed": cell.seed,
        "judge": getattr(oracle, "name", "toy"),
        "wall": round(time.time() - t0, 1),
    }


def worst(r: dict) -> float:
    """The harm protocol's worst drop (``evaluation.harm``): every attribute on the prompts without the
    concept, the erased concept's own attribute on its siblings included."""
    return harm(r["before"], r["after"]).worst


def mean_over_seeds(rows: list[dict]) -> list[dict]:
    """One entry per (method, setting): mean and standard deviation over its seeds."""
    import statistics

    def sd(xs: list[float]) -> float:
        return float("nan") if any(math.isnan(x) for x in xs) else statistics.pstdev(xs)

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["label"]), []).append(r)
    out = []
    for (method, label), rs in groups.items():
        rates, drops = [r["after"]["concept_rate"] for r in rs], [worst(r) for r in rs]
        out.append({"method": method, "label": label, "n": len(rs), "rate": statistics.mean(rates), "worst": statistics.mean(drops),
                    "rate_sd": statistics.pstdev(rates), "worst_sd": sd(drops), "density": rs[0].get("density")})  # fmt: skip
    return out
