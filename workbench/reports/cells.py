"""The sweep's cells: one eraser at one strength and seed (``Cell``), the grid of them, making and
judging one (``run_cell``), and the numbers read from a judged cell (``worst``, ``mean_over_seeds``).
The robustness page, the attack table and the reactivation view all build on these."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..editing.edits import Edit, load_edit
from ..editing.methods import ERASERS, MASKS
from ..editing.prune import random_like
from ..evaluation.erasers import erase_and_judge, make_edit, mask_density
from ..evaluation.harm import harm
from ..evaluation.judges import Judge


@dataclass(frozen=True)
class Cell:
    """One eraser at one strength and seed."""

    method: str
    options: dict = field(default_factory=dict, hash=False, compare=False)
    seed: int = 0
    label: str = ""
    name: str = ""  # the row's method in the tables and figure when it is a variant ('esd+preserve')
    base: str = field(default="", compare=False)  # a random control's eraser, whose mask sizes it copies

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
        """A random control's eraser cell, whose mask sizes it copies."""
        return Cell(self.base, {k: v for k, v in self.options.items() if k != "draw"}, self.seed).key

    @property
    def key(self) -> str:
        opts = "-".join(f"{k}{v}" for k, v in sorted(self.options.items()))
        return f"{self.method}-{opts}-s{self.seed}".replace(".", "p")


#: random controls drawn per (setting, seed): the table reads their mean and spread
DRAWS = 5
#: the row name of the random controls
RANDOM = "random"


def _controls(options: dict, seed: int, label: str, base: str, name: str = "") -> list[Cell]:
    return [Cell(RANDOM, {**options, **({"draw": d} if d else {})}, seed, label, name, base) for d in range(DRAWS)]


def erasers() -> list:
    """The registered erasers in grid order."""
    return ERASERS.specs()


def grid(concept: str = "striped", seeds: tuple[int, ...] = (0,), quick: bool = False, core: bool = False,
         variants: bool = False, iterations: int | None = None, cached: bool = False,
         every_eraser: bool = False) -> list[Cell]:  # fmt: skip
    """The sweep: every registered eraser over its settings (``EraserSpec.grid``: ConceptPrune over
    k, ESD-x and AC over the learning rate, P-ESD and P-AC over k, UCE over its erase scale, ...), and
    random masks of the size of each setting that asks for controls (P-ESD's). ``core`` keeps one
    or two settings of each eraser (the other concepts' run); ``quick`` is a smoke run at tiny
    budgets. With several seeds, the core grid repeats only the main settings marked 'always' on
    the others (ESD-x's and P-ESD's; ``every_eraser``: those marked 'every' too, AC's and P-AC's).
    ``variants`` adds, for the first seed, the preservation term (ESD-x, P-ESD), ConceptPrune's
    mask as P-ESD's start, and P-ESD's mask trained together with ESD-x weights. Trained erasers
    draw fresh examples (the reference protocol); ``cached`` adds, for every seed, the main
    settings trained on one cached set (rows 'esd cached', ...: the deviation beside the reference).
    Every cell's options are checked against its eraser before the grid is returned."""
    from ..editing.make import prepare

    # the protocol is part of every trained cell's key: cells made before it (cached) are never read as fresh
    cells = [c if not trained(c.base or c.method) else replace(c, options={"examples": "fresh", **c.options})
             for c in _grid(seeds, quick, core, variants, iterations, every_eraser)]  # fmt: skip
    if cached:
        main = {(spec.name, s.label) for spec in erasers() if trained(spec.name) for s in spec.grid("core", 200)
                if s.main and s.repeat == "always"}  # fmt: skip
        cells += [replace(c, options={**c.options, "examples": "cached"}, name=f"{c.method} cached")
                  for c in list(cells) if (c.method, c.label) in main and not c.name]  # fmt: skip
    for c in cells:  # a misspelt option fails here, before the first cell runs
        if c.method != RANDOM:
            prepare(c.method, {k: v for k, v in c.options.items() if k != "draw"})
    return cells


def trained(method: str) -> bool:
    """Whether ``method`` is a registered eraser that draws training examples (its options have the
    example protocol)."""
    return method in ERASERS and "examples" in {f.name for f in fields(ERASERS[method].options)}


def learned_mask(method: str) -> bool:
    """Whether ``method`` is a trained eraser whose edit is a pruning mask (P-ESD, P-AC)."""
    return trained(method) and ERASERS[method].files == (MASKS,)


def _grid(seeds: tuple[int, ...], quick: bool, core: bool, variants: bool, iterations: int | None,
          every_eraser: bool = False) -> list[Cell]:  # fmt: skip
    size = "quick" if quick else "core" if core else "full"
    its = iterations or (20 if quick else 200)
    specs = erasers()
    cells = [Cell(sp.name, s.options, 0, s.label) for sp in specs if not sp.seeded for s in sp.grid(size, its)]
    for seed in seeds:
        repeat = core and seed != seeds[0]  # the core grid's other seeds repeat its main settings
        for sp in (sp for sp in specs if sp.seeded):
            settings = sp.grid(size, its)
            if repeat:
                settings = [s for s in settings if s.main and (s.repeat == "always" or (every_eraser and s.repeat == "every"))]
            cells += [Cell(sp.name, s.options, seed, s.label) for s in settings]
        if not repeat:
            cells += [c for sp in specs if sp.seeded for s in sp.grid(size, its) if s.controls
                      for c in _controls(s.options, seed, s.label, sp.name)]  # fmt: skip
    if variants:
        cells += _variants(seeds, quick, its)
    return cells


def _variants(seeds: tuple[int, ...], quick: bool, its: int) -> list[Cell]:
    """Every eraser's variants (``EraserSpec.variants``; ``grid``'s ``variants``), on the first
    seed or every seed, and the random controls of those that ask for them."""
    cells = []
    for sp in erasers():
        for s in sp.variants(quick, its):
            cells += [Cell(sp.name, s.options, seed, s.label, s.name) for seed in (seeds if s.seeds == "every" else seeds[:1])]
            if s.controls:
                cells += _controls(s.options, seeds[0], s.label, sp.name, control_name(sp.name, s.name))
    return cells


def control_name(eraser: str, variant: str) -> str:
    """The row of a variant's random controls: 'random on attn2.to_v' beside 'pesd on attn2.to_v'."""
    return RANDOM + variant.removeprefix(eraser)


def variant_bases() -> dict[str, tuple[str, ...]]:
    """Each variant's row and the rows it is read against (its controls: the variant and the random row)."""
    out: dict[str, tuple[str, ...]] = {}
    for sp in erasers():
        for s in sp.variants(False, 200):
            out[s.name] = s.bases
            if s.controls:
                out[control_name(sp.name, s.name)] = (s.name, RANDOM)
    return out


def run_cell(pipe, oracle, cell: Cell, concept, work: Path, n_per: int, setting: dict | None = None) -> dict:
    """Make the cell's edit (saved under work/edits), judge it; ``wall`` is the seconds of both.
    ``oracle``: the judge (any ``judge_of`` accepts); ``setting``: steps, guidance, t_hat for every edit."""
    setting = dict(setting or {})
    t0 = time.time()
    pinned = oracle.pinned() if isinstance(oracle, Judge) else None  # the judge's package, version, weights, threshold
    if cell.method == RANDOM:  # the control: per row as many entries as its eraser's mask, at random
        base = load_edit(work / "edits" / cell.base_key)
        info = {k: v for k, v in base.info.items() if k not in ("train_loss", "heldout_loss", "gap_draws")}  # it trains nothing
        edit = Edit("random", {**info, "seconds": 0.0, "draw": cell.draw}, masks=random_like(base.masks, seed=cell.draw_seed))
        edit.info["density"] = mask_density(edit.masks)
    else:
        edit = make_edit(pipe, cell.method, concept, cell_options(cell, setting), run_of(cell, work, setting))
        edit.info["judge_pinned"] = pinned
        edit.save(work / "edits" / cell.key)
    judged = {k: setting[k] for k in ("steps", "guidance") if k in setting}
    return {
        **erase_and_judge(pipe, oracle, edit, n_per=n_per, concept=concept if not isinstance(concept, str) else None, **judged),
        **({"method": cell.name} if cell.name else {}),
        "label": cell.label,
        "seed": cell.seed,
        "judge": getattr(oracle, "name", "toy"),
        "judge_pinned": pinned,
        "wall": round(time.time() - t0, 1),
    }


def save_cell(path: Path, row: dict) -> None:
    """A judged cell's JSON at ``path``, written beside it and renamed into place: whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")  # no two processes make one cell (store.shards: shard_of, wait_for_others)
    tmp.write_text(json.dumps(row, default=float))
    tmp.rename(path)


def cell_options(cell: Cell, setting: dict) -> dict:
    """The eraser options of a cell: its own, and the page's settings its eraser takes (``t_hat``)."""
    names = {f.name for f in fields(ERASERS[cell.method].options)}
    return {**{k: v for k, v in setting.items() if k in names}, **cell.options}


def run_of(cell: Cell, work: Path, setting: dict) -> dict:
    """The erasing run of a cell: its seed, the page's sampling, calibration under ``work``."""
    return {"seed": cell.seed, "workdir": work / "calibration", "progress": False,
            **{k: setting[k] for k in ("steps", "guidance") if k in setting}}  # fmt: skip


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
