"""``workbench benchmark``: every registered eraser on every toy concept, in UnlearnCanvas's form.

One edit per (concept, eraser): each eraser's main setting (``main_setting``; a plugin eraser
without one: its default options), made and judged as a robustness cell (``reports.cells.run_cell``)
and attacked with the main attack. Per cell, from the judge's readings of the concept's held-out
prompts (``BENCHMARK_COLUMNS``):

- UA, unlearning accuracy: the share of the concept's target images where the judge does not see it;
- IRA, in-domain retain accuracy: the accuracy of the concept's own attribute (its kind: a texture's
  texture) on the held-out prompts without the concept;
- CRA, cross-domain retain accuracy: the mean accuracy of every other attribute on those prompts;
- toy FID of those images; pre-ASR, post-ASR and ASR (Diffusion-MU-Attack's) under the attack.

Resumable and shardable like the robustness grid (``store.shards``): cells and attack runs live
under ``work/<concept>/`` in the robustness layout; the page and ``benchmark.csv`` beside it are
written from them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from ..editing.methods import ERASERS, main_setting
from .attacked import run_folder
from .cells import Cell

#: a cell's columns in benchmark.csv, after concept, kind, eraser and setting
BENCHMARK_COLUMNS = ("UA", "IRA", "CRA", "fid", "pre_asr", "post_asr", "asr", "cell_seconds", "attack_seconds")


def toy_concepts(model: str = "toy") -> list[str]:
    """Every named concept the toy judge reads on ``model`` (the toy world's textures and shapes)."""
    from ..prompts.concepts import get_concept, named_concepts

    out = []
    for name in named_concepts():
        c = get_concept(name, n_per=1)
        if c.judge == "toy" and c.extra.get("world", "toy") == model:
            out.append(name)
    return out


def eraser_cells(erasers: list[str] | None = None) -> list[tuple[str, Cell]]:
    """(display name, cell) of each eraser's main setting, every registered eraser by default."""
    out = []
    for name in erasers or list(ERASERS):
        spec = ERASERS[name]  # an unknown name fails here, naming the registered ones
        main = main_setting(spec)
        out.append((spec.display(main) if main else spec.name, Cell(spec.name, dict(main.options) if main else {}, 0)))
    return out


def run_benchmark(out: str | Path = "docs/benchmark.md", work: str | Path = "stores/benchmark", model: str = "toy",
                  concepts: list[str] | None = None, erasers: list[str] | None = None, attack: str | None = None,
                  attack_budget: int | None = None, n_per: int = 2, steps: int | None = None, t_hat: int | None = None, progress: bool = True,
                  shard: tuple[int, int] | str | None = None, device: str = "cpu") -> pd.DataFrame:  # fmt: skip
    """Make, judge and attack every (concept, eraser) cell not on disk yet (this shard's first),
    then write the page and its CSV; return the table (one row a cell). ``attack``: a name of
    ``ATTACKS``, by default the registry's main one."""
    from ..attacks.methods import ATTACKS, main_attack
    from ..evaluation.judges import judge_of
    from ..models import load_pipeline
    from ..prompts.concepts import get_concept
    from ..store.shards import chosen_shard, running_shard

    attack = attack or main_attack()
    ATTACKS[attack]  # an unknown attack fails before any cell
    cells = eraser_cells(erasers)
    concepts = concepts or toy_concepts(model)
    work, out = Path(work), Path(out)
    work.mkdir(parents=True, exist_ok=True)
    shard = chosen_shard(shard)
    t0 = time.time()
    with running_shard(work, shard):
        pipe = load_pipeline(model, device=device)
        setting = {k: v for k, v in {"steps": steps, "t_hat": t_hat}.items() if v is not None}  # smoke runs: fewer steps
        judges = {c: judge_of(None, get_concept(c, n_per=n_per)) for c in concepts}  # built once, for cells and attacks
        _cells(pipe, judges, cells, work, n_per, setting, progress, shard)
        _attacks(pipe, judges, cells, work, attack, attack_budget, setting, progress, shard)
    table = benchmark_table(work, concepts, cells, attack, attack_budget)
    from .benchmark_page import write_page

    write_page(out, table, attack, round(time.time() - t0), n_per, model)
    return table


def _cells(pipe, judges: dict, cells: list, work: Path, n_per: int, setting: dict, progress: bool, shard) -> None:
    """Every (concept, eraser) cell made and judged (``judges``: each concept's): this shard's, then
    what other shards leave."""
    from tqdm.auto import tqdm

    from ..store.shards import shard_of, wait_for_others
    from .cells import run_cell, save_cell

    tasks = [(c, cell) for c in judges for _, cell in cells]

    def path(c: str, cell: Cell) -> Path:
        return work / c / "cells" / f"{cell.key}.json"

    def make(todo: list, desc: str) -> None:
        for c, cell in tqdm([t for t in todo if not path(*t).exists()], desc=desc, disable=not progress):
            save_cell(path(c, cell), run_cell(pipe, judges[c], cell, c, work / c, n_per, setting))

    make(shard_of(tasks, shard, lambda t: f"{t[0]}/{t[1].key}"), "benchmark cells")
    wait_for_others(work, shard, lambda: all(path(*t).exists() for t in tasks))
    make(tasks, "benchmark cells other shards left")


def _attacks(pipe, judges: dict, cells: list, work: Path, attack: str, budget: int | None, setting: dict,
             progress: bool, shard) -> None:  # fmt: skip
    """The unedited model and every cell under ``attack`` (the robustness layout, ``reports.attacked``)."""
    from ..store.shards import shard_of, wait_for_others
    from .attacked import run_attack_list

    todo = [(c, t) for c in judges for t in attack_todo(work / c, cells, attack, budget)]

    def run(items: list) -> None:
        for c in judges:
            run_attack_list(pipe, judges[c], [t for cc, t in items if cc == c], c, work / c, setting.get("steps"), None,
                            progress)  # fmt: skip

    run(shard_of(todo, shard, lambda x: str(x[1][-1])))
    wait_for_others(work, shard, lambda: all((t[-1] / "result.json").exists() for _, t in todo))
    run(todo)


def attack_todo(work: Path, cells: list, attack: str, budget: int | None) -> list[tuple]:
    """The attack runs of one concept: (name, cell or None, attack, budget, seed, folder), unedited first."""
    from ..attacks.methods import ATTACKS

    b = ATTACKS[attack].budget if budget is None else budget
    runs = [("unedited", None), *cells]
    return [(name, cell, attack, b, 0, run_folder(work, cell, attack, b, 0)) for name, cell in runs]


def benchmark_table(work: Path, concepts: list[str], cells: list, attack: str, budget: int | None) -> pd.DataFrame:
    """One row a (concept, eraser), unedited first per concept, read from the cells and attack runs on disk."""
    from ..attacks.score import rate_values, read_result
    from ..models.toyworld.grammar import ATTRIBUTES
    from ..prompts.concepts import get_concept

    rows = []
    for c in concepts:
        value = get_concept(c, n_per=1).extra.get("value", c)
        kind = next(a for a, values in ATTRIBUTES.items() if value in values)
        for name, cell, _, _, _, folder in attack_todo(work / c, cells, attack, budget):
            res = read_result(folder)
            r = json.loads((work / c / "cells" / f"{cell.key}.json").read_text()) if cell else None
            reading = r["after"] if r else _unedited(work / c, cells)
            acc = reading["other_accuracy"]
            rows.append({"concept": c, "kind": kind, "eraser": name, "setting": cell.key if cell else "-",
                         "UA": 1 - reading["concept_rate"], "IRA": acc[kind],
                         "CRA": sum(v for a, v in acc.items() if a != kind) / (len(acc) - 1), "fid": reading.get("fid"),
                         **rate_values(res, ("pre_asr", "post_asr", "asr")),
                         "cell_seconds": r["wall"] if r else 0.0, "attack_seconds": res.get("wall", res.get("seconds")),
                         "judge_pinned": json.dumps(res.get("judge_pinned"))})  # fmt: skip
    return pd.DataFrame(rows)


def _unedited(work: Path, cells: list) -> dict:
    """The unedited model's reading of a concept (every cell's ``before``: the first cell's)."""
    return json.loads((work / "cells" / f"{cells[0][1].key}.json").read_text())["before"]
