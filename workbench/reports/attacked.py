"""The erasers of ``workbench robustness`` under attack: one table of attack success per eraser.

For each eraser's main setting (ConceptPrune k = 2 %, ESD-x and AC at lr 1e-4, P-ESD at k = 10 %,
P-AC at k = 20 %; with ``--variants``, also P-ESD on the cross-attention values, the best within-5-points mask of
the grid) and the unedited model, every chosen attack of ``workbench.attacks`` is run on the concept's
held-out prompts with each seed: the edit of that seed (ConceptPrune is deterministic: its one edit,
attacked with each seed). Each (eraser, attack, seed) is kept under ``work/attacks/<key>/`` (the
``workbench attack --out`` format), so an interrupted run resumes. Erasers are compared pairwise
with exact McNemar tests over the same (prompt, seed) pairs.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import time
from pathlib import Path

from ..editing.methods import ERASERS, main_setting
from ..store.shards import wait_for_others
from .cells import Cell

#: the papers' claims tested pairwise besides every eraser against the unedited model
CLAIMS = (("pesd k=10%", "esd-x lr=1e-4"), ("pesd k=10%", "conceptprune k=2%"), ("conceptprune k=2%", "esd-x lr=1e-4"),
          ("pac k=20%", "ac lr=1e-4"), ("ac lr=1e-4", "esd-x lr=1e-4"), ("pesd attn2.to_v k=10%", "esd-x lr=1e-4"),
          ("pesd attn2.to_v k=10%", "conceptprune k=2%"))  # fmt: skip


def attacked() -> tuple[tuple[str, str, dict, str], ...]:
    """The erasers put under attack: every registered eraser's main setting (``Setting.main``), then
    the variants, each as (display name, method, the options that must match exactly, the variant's
    name or "" for a main cell); the unedited model is always attacked too."""
    out, variants = [], []
    for spec in ERASERS.specs():
        main = main_setting(spec)
        if main is not None:
            out.append((spec.display(main), spec.name, _matched(main.options), ""))
        variants += [(s.attacked, spec.name, _matched(s.options), s.name) for s in spec.variants(False, 200) if s.attacked]
    return (*out, *variants)


def _matched(options: dict) -> dict:
    """The options an attacked cell must match exactly (any iterations)."""
    return {k: v for k, v in options.items() if k != "iterations"}


def pairs_of() -> tuple[tuple[str, str], ...]:
    """The McNemar pairs: each attacked eraser against the unedited model, then the claims."""
    return tuple((a[0], "unedited") for a in attacked()) + CLAIMS


#: attacks that change weights: nothing to revive on the unedited model
def weight_attacks() -> set[str]:
    """Attacks that change weights (nothing to revive on the unedited model)."""
    from ..attacks.methods import ATTACKS

    return {s.name for s in ATTACKS.specs() if s.changes == "weights"}


def _matches(cell: Cell, method: str, want: dict, name: str) -> bool:
    extra = set(cell.options) - {"iterations", "examples"} - set(want)
    return (
        cell.method == method
        and cell.options.get("examples", "fresh") == "fresh"  # the reference protocol's edit, not a cached twin
        and cell.name == name
        and not extra
        and all(cell.options.get(k) == v for k, v in want.items())
    )


def attacked_cells(cells: list[Cell], seed: int) -> list[tuple[str, Cell | None]]:
    """(name, grid cell) of each eraser put under attack at ``seed``, the unedited model first (None)."""
    out: list[tuple[str, Cell | None]] = [("unedited", None)]
    for name, method, want, variant in attacked():
        found = [c for c in cells if _matches(c, method, want, variant) and c.seed == (seed if ERASERS[method].seeded else 0)]
        if found:
            out.append((name, found[0]))
    return out


def mcnemar(a: list[bool], b: list[bool]) -> dict:
    """Exact two-sided McNemar test on paired outcomes: ``a_only`` (shown under A, not B), ``b_only``,
    and the binomial p-value of the discordant pairs (1.0 when there are none)."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes of different lengths ({len(a)} and {len(b)})")
    x = sum(p and not q for p, q in zip(a, b))
    y = sum(q and not p for p, q in zip(a, b))
    n = x + y
    tail = sum(math.comb(n, i) for i in range(min(x, y) + 1)) / 2**n if n else 0.5
    return {"a_only": x, "b_only": y, "p": min(1.0, 2 * tail)}


def run_attacks(pipe, oracle, cells: list[Cell], concept: str, work: Path, seeds: tuple[int, ...], attacks: tuple[str, ...],
                budget: int | None = None, progress: bool = True, steps: int | None = None,
                guidance: float | None = None, shard: tuple[int, int] | None = None) -> list[dict]:  # fmt: skip
    """Run (or resume) every (eraser, attack, seed); return one row per run with its per-prompt
    outcomes. ``shard`` (i, n) runs every n-th run from the i-th first, then, once no other shard
    runs, whatever is still missing (``store.shards``)."""
    from ..attacks import ATTACKS, read_result

    specs = [ATTACKS[m] for m in attacks]  # an unknown name fails here, naming the registered ones
    weights = weight_attacks()
    todo = []
    for seed in seeds:
        for name, cell in attacked_cells(cells, seed):
            for spec in specs:
                method = spec.name
                if cell is None and method in weights:
                    continue
                b = spec.budget if budget is None else budget
                todo.append((name, cell, method, b, seed, run_folder(work, cell, method, b, seed)))
    mine = todo if shard is None else todo[shard[0] :: shard[1]]
    run_attack_list(pipe, oracle, mine, concept, work, steps, guidance, progress)
    wait_for_others(work, shard, lambda: all((t[-1] / "result.json").exists() for t in todo))
    run_attack_list(pipe, oracle, todo, concept, work, steps, guidance, progress)  # what a killed shard left
    rows = []
    for name, cell, method, b, seed, folder in todo:
        res = read_result(folder)
        rows.append({"eraser": name, "cell": cell.key if cell else None, "attack": method, "budget": b, "seed": seed,
                     "folder": str(folder),
                     "summary": {k: v for k, v in res.items() if k != "per_prompt"},
                     "before": [r["before"] for r in res["per_prompt"]], "after": [r["after"] for r in res["per_prompt"]],
                     "prompts": [(r["prompt"], r["seed"]) for r in res["per_prompt"]]})  # fmt: skip
    return rows


def run_folder(work: Path, cell: Cell | None, attack: str, budget: int, seed: int) -> Path:
    """Where one attack run lives: ``work/attacks/EDIT--ATTACK-bBUDGET-sSEED`` (EDIT 'unedited' for none)."""
    return work / "attacks" / f"{cell.key if cell else 'unedited'}--{attack}-b{budget}-s{seed}"


def run_attack_list(pipe, oracle, todo: list, concept, work: Path, steps, guidance, progress: bool) -> None:
    """Run each of ``todo`` (eraser, cell, attack, budget, seed, folder) not on disk yet, whole or not at all."""
    from tqdm.auto import tqdm

    from ..attacks import attack
    from ..editing.edits import Edit, load_edit

    for _, cell, method, b, seed, folder in tqdm([t for t in todo if not (t[-1] / "result.json").exists()], desc="attacks",
                                                 disable=not progress):  # fmt: skip
        edit = load_edit(work / "edits" / cell.key) if cell else Edit("unedited")
        t0 = time.time()
        tmp = folder.with_name(folder.name + ".tmp")  # no two processes make one run (shards, wait_for_others)
        shutil.rmtree(tmp, ignore_errors=True)  # what an interrupted run left
        attack(pipe, oracle, edit, concept, method, budget=b, seed=seed, steps=steps, guidance=guidance, out=tmp)
        res = json.loads((tmp / "result.json").read_text())
        res["wall"] = round(time.time() - t0, 1)
        (tmp / "result.json").write_text(json.dumps(res, indent=1, default=float))
        tmp.rename(folder)  # a run is whole or absent


def reactivation_runs(rows: list[dict], work: Path, seed: int, attack: str | None = None) -> dict[str, tuple[Path | None, Path]]:
    """For ``reports.reactivation.compare_reactivation``: each eraser's (edit folder, attack folder)
    of ``seed``'s ``attack`` runs (default: the reactivation attack), the unedited model first; empty
    when that attack was not run."""
    from ..attacks.methods import reactivation_attack

    attack = attack or reactivation_attack()
    return {r["eraser"]: (work / "edits" / r["cell"] if r["cell"] else None, Path(r["folder"]))
            for r in rows if r["attack"] == attack and r["seed"] == seed}  # fmt: skip


def _pooled(rows: list[dict]) -> dict:
    """The runs' outcomes pooled into one ``AttackResult`` summary (its three rates, Wilson intervals)."""
    from ..attacks import AttackResult

    pairs = [p for r in rows for p in r["prompts"]]
    before = [x for r in rows for x in r["before"]]
    after = [x for r in rows for x in r["after"]]
    return AttackResult("pooled", "", [p[0] for p in pairs], [p[1] for p in pairs], before, after).summary()


def attack_table(rows: list[dict], harm: dict[str, tuple[float, float]] | None = None) -> list[str]:
    """Markdown lines: per (eraser, attack), mean ± sd over seeds of the clean rate and the ASR, the
    pooled rates with Wilson 95 % intervals, the eraser's harm and the attack's seconds."""
    harm = harm or {}
    lines = ["| eraser | attack | seeds | pre-ASR (mean ± sd) | ASR (mean ± sd) | pre-ASR pooled | post-ASR pooled | "
             "ASR pooled [95 % CI] | attacked images showing it | worst drop | toy FID | seconds per attack |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["eraser"], r["attack"]), []).append(r)

    def ci(rate: dict) -> str:
        k, n, (lo, hi) = rate["k"], rate["n"], rate["ci95"]
        return f"{k}/{n} = {k / n:.1%} [{lo:.0%}, {hi:.0%}]" if n else "-"

    for (eraser, method), rs in groups.items():
        asr = [r["summary"]["asr"]["rate"] for r in rs]
        pre = [r["summary"]["pre_asr"]["rate"] for r in rs]
        drop, fid = harm.get(eraser, (float("nan"), float("nan")))  # fid: nan where the judge has no toy FID
        pooled = _pooled(rs)
        secs = statistics.mean(r["summary"].get("seconds", float("nan")) for r in rs)
        lines.append(f"| {eraser} | {method} | {len(rs)} | {statistics.mean(pre):.1%} ± {statistics.pstdev(pre):.1%} | "
                     f"{statistics.mean(asr):.1%} ± {statistics.pstdev(asr):.1%} | {pooled['pre_asr']['rate']:.1%} | "
                     f"{pooled['post_asr']['rate']:.1%} | {ci(pooled['asr'])} | {ci(pooled['attacked'])} | {100 * drop:.1f} | "
                     f"{fid:.1f} | {secs:.0f} |")  # fmt: skip
    return lines


def paired_tests(rows: list[dict], pairs: tuple | None = None) -> list[dict]:
    """Exact McNemar tests between the ``pairs`` of erasers, per attack, over matched (prompt, seed)
    pairs pooled over the attack seeds they share: one dict per test (attack, a, b, pairs, a_only,
    b_only, p)."""
    from ..attacks.score import asr_hits

    pairs = pairs_of() if pairs is None else pairs
    index = {(r["eraser"], r["attack"], r["seed"]): r for r in rows}
    out = []
    for method in dict.fromkeys(r["attack"] for r in rows):
        for a, b in pairs:
            seeds = sorted(
                {s for (e, m, s) in index if e == a and m == method} & {s for (e, m, s) in index if e == b and m == method}
            )
            if not seeds:
                continue
            xa, xb = [], []
            for s in seeds:
                ra, rb = index[(a, method, s)], index[(b, method, s)]
                if ra["prompts"] != rb["prompts"]:
                    raise ValueError(f"{a} and {b} were attacked on other prompts ({method}, seed {s}): rerun one")
                xa += asr_hits(ra["before"], ra["after"])
                xb += asr_hits(rb["before"], rb["after"])
            out.append({"attack": method, "a": a, "b": b, "pairs": len(xa), **mcnemar(xa, xb)})
    return out


def comparisons(rows: list[dict]) -> list[str]:
    """Markdown lines of ``paired_tests``."""
    return ["| attack | A | B | pairs | ASR success under A only | under B only | p (exact McNemar) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *(f"| {t['attack']} | {t['a']} | {t['b']} | {t['pairs']} | {t['a_only']} | {t['b_only']} | {t['p']:.3g} |"
              for t in paired_tests(rows))]  # fmt: skip


def pooled_cells(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """{(eraser, attack): its runs pooled by ``_pooled``}, in the rows' order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["eraser"], r["attack"]), []).append(r)
    return {key: _pooled(rs) for key, rs in groups.items()}


def attack_claims(rows: list[dict], concept: str, harm: dict | None = None) -> list[str]:
    """Sentences from the numbers against the papers' robustness claims: an attack that does not
    make the concept on the unedited model says nothing about erasers; a mask that never erased has
    nothing to defend (its leak without attack is given beside its ASR); a claim is decided only
    where the paired McNemar test gives p < 0.05 and both erasers are within the harm budget
    (``evaluation.harm.BUDGET``): robustness bought with more harm is no comparison."""
    from ..evaluation.harm import BUDGET

    harm = harm or {}
    pooled = pooled_cells(rows)

    def say(e: str, m: str) -> str:
        s = pooled[(e, m)]
        return f"{e} ASR {s['asr']['rate']:.1%} (pre-ASR {s['pre_asr']['rate']:.1%})"

    tests = {(t["a"], t["b"], t["attack"]): t["p"] for t in paired_tests(rows)}
    out = []
    for m in dict.fromkeys(r["attack"] for r in rows):
        have = {e for (e, mm) in pooled if mm == m}
        base = pooled.get(("unedited", m))
        if base is not None and base["attacked"]["rate"] < 0.5:
            out.append(f"- {m}: the attack makes '{concept}' on {base['attacked']['rate']:.1%} of the unedited model's images (which "
                       f"show it on {base['pre_asr']['rate']:.1%} of the plain prompts): it is no attack on the toy world, and "
                       "says nothing about the erasers.")  # fmt: skip
            continue
        rates = {e: pooled[(e, m)]["asr"]["rate"] for e in have if e != "unedited"}
        if rates and min(rates.values()) >= 0.95:
            out.append(f"- {m}: every edit comes back (lowest ASR {min(rates.values()):.0%}): no eraser here, pruning "
                       "or fine-tuning, resists it.")  # fmt: skip
            continue
        for a, b, claim in (("pesd k=10%", "esd-x lr=1e-4", "the P-ESD paper: a learned mask is more robust than ESD"),
                            ("pesd attn2.to_v k=10%", "esd-x lr=1e-4", "the same claim, for the mask on the cross-attention values"),
                            ("conceptprune k=2%", "esd-x lr=1e-4", "ConceptPrune's Table 3: pruning resists better than ESD")):  # fmt: skip
            if a in have and b in have:
                p = tests.get((a, b, m), 1.0)
                over = [f"{e} costs {100 * harm[e][0]:.1f} points" for e in (a, b) if e in harm and harm[e][0] > BUDGET]
                verdict = (f"not at matched harm ({'; '.join(over)}; budget {100 * BUDGET:g}): not decided" if over
                           else "not decided at this size (p >= 0.05)" if p >= 0.05
                           else "holds here" if rates[a] < rates[b] else "does not hold here")  # fmt: skip
                out.append(f"- {m}: {say(a, m)} against {say(b, m)}, McNemar p = {p:.3g}: {claim}; {verdict}.")
        if "conceptprune k=2%" in have:
            out.append(f"- {m}: ConceptPrune on '{concept}': {say('conceptprune k=2%', m)}; its Table 5 reports close to 0 % on "
                       "a style and on objects.")  # fmt: skip
    return out


def asr_grid(rows: list[dict]) -> tuple[list[str], list[str], list[list[float]], list[float]]:
    """(erasers, attacks, pooled ASR [eraser][attack] with NaN where not run, each eraser's pooled
    share shown without attack): the data of the overview table and heat map."""
    cell = pooled_cells(rows)
    erasers = list(dict.fromkeys(e for e, _ in cell))
    attacks = list(dict.fromkeys(m for _, m in cell))
    asr = [[cell[(e, m)]["asr"]["rate"] if (e, m) in cell else math.nan for m in attacks] for e in erasers]
    pre = [next(cell[(e, m)]["pre_asr"]["rate"] for m in attacks if (e, m) in cell) for e in erasers]
    return erasers, attacks, asr, pre


def frontier_points(rows: list[dict], harm: dict | None) -> dict[str, list[tuple[str, float, float]]]:
    """Per attack: (eraser, its harm in points, its pooled ASR) for every attacked eraser whose harm is known."""
    harm = harm or {}
    out: dict[str, list[tuple[str, float, float]]] = {}
    for (e, m), s in pooled_cells(rows).items():
        if e in harm and harm[e][0] == harm[e][0]:
            out.setdefault(m, []).append((e, 100 * harm[e][0], s["asr"]["rate"]))
    return out


def curve_points(rows: list[dict]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Per attack and eraser, the pooled ASR (shown before or at that budget) at each budget checkpoint
    its runs all judged (``curve`` in result.json: relearn and the gradient attacks); empty where none did."""
    from ..attacks.score import asr_hits

    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["summary"].get("curve"):
            groups.setdefault((r["attack"], r["eraser"]), []).append(r)
    for (attack, eraser), rs in groups.items():
        budgets = sorted(set.intersection(*({c["budget"] for c in r["summary"]["curve"]} for r in rs)))
        pts = []
        for b in budgets:
            hits = [h for r in rs for c in r["summary"]["curve"] if c["budget"] == b for h in asr_hits(r["before"], c["shown"])]
            pts.append((b, sum(hits) / len(hits)))
        out.setdefault(attack, {})[eraser] = pts
    return out


def asr_overview(rows: list[dict]) -> list[str]:
    """Markdown lines: one row per eraser, its share shown without attack and its pooled ASR under
    each attack."""
    erasers, attacks, asr, pre = asr_grid(rows)
    lines = ["| eraser | pre-ASR | " + " | ".join(f"ASR {m}" for m in attacks) + " |", "| --- " * (len(attacks) + 2) + "|"]
    for e, row, p in zip(erasers, asr, pre):
        lines.append(f"| {e} | {p:.1%} | " + " | ".join("-" if math.isnan(x) else f"{x:.1%}" for x in row) + " |")
    return lines


def attack_section(rows: list[dict], concept: str, harm: dict | None = None, figures: Path | None = None) -> list[str]:
    """The markdown section of docs/robustness.md for the attacked erasers (with a heat map of the
    pooled ASR written under ``figures`` when given)."""
    from ..evaluation.harm import BUDGET

    if not rows:
        return []
    figs = {}
    if figures is not None:
        from .plots import asr_curves, asr_frontier, asr_heatmap, write_images

        curves = curve_points(rows)
        figs = write_images([(f"attack success {concept}", asr_heatmap(*asr_grid(rows))),
                             (f"attack success against harm {concept}", asr_frontier(frontier_points(rows, harm), BUDGET)),
                             *([(f"attack success against budget {concept}", asr_curves(curves))] if curves else [])],
                            figures)  # fmt: skip
    budgets = ", ".join(sorted({f"{r['attack']} {r['budget']}" for r in rows}))
    seeds = sorted({r["seed"] for r in rows})
    total = sum(r["summary"].get("seconds", 0) for r in rows) / 60
    return [
        "", "## Under attack", "",
        f"Each eraser's main setting and the unedited model, attacked on the held-out captions naming '{concept}' "
        f"({len(rows[0]['after'])} prompts a run) with seeds {seeds} (a trained eraser's edit of that seed; ConceptPrune's one edit "
        f"attacked with each seed). Budgets (optimiser steps, Ring-A-Bell generations): {budgets}. The attacks: "
        "[attacks.md](attacks.md). 'Shown without attack' is the edit's own leak on these prompts (other captions and "
        "seeds than the sweep's, so it can differ from the sweep's 'left' by the spread of small samples); ASR is "
        "Diffusion-MU-Attack's (pre-ASR + post-ASR: shown before or after the attack); the curves judge each run at a "
        f"quarter and half of its budget too; {total:.0f} min of attack time in all.", "",
        "Pooled over seeds (the details, with intervals, below):", "",
        *asr_overview(rows), "",
        *[f"![{t}](figures/{n})" for t, n in figs.items()], "",
        *attack_table(rows, harm), "",
        "### Erasers compared on the same prompts", "",
        *comparisons(rows), "",
        "### Against the papers' robustness claims", "",
        f"Claims are decided only between erasers within the harm budget ({100 * BUDGET:g} points of worst drop, "
        "`evaluation/harm.py`); the figure 'attack success against harm' places every attacked eraser by its harm.", "",
        *attack_claims(rows, concept, harm),
    ]  # fmt: skip


def threshold_section(work: Path | None) -> list[str]:
    """Every attack run whose judge gave scores (NudeNet, CLIP, a classifier) judged again at each of
    ``frames.THRESHOLDS`` from its prompts.csv: pre-ASR, post-ASR and ASR per (edit, attack), the
    mean over its runs (seeds). Nothing where no run has scores (the toy oracle)."""
    from .frames import THRESHOLDS, threshold_frame

    if work is None or not (work / "attacks").is_dir():
        return []
    df = threshold_frame(work, list(THRESHOLDS))
    if df.empty:
        return []
    df["edit"] = df["edit"].str.replace(r"-s\d+$", "", regex=True)  # the edit's cell without its seed: one row over the seeds
    g = df.groupby(["edit", "attack", "threshold"], sort=False)[["pre_asr", "post_asr", "asr"]].mean()
    head = " | ".join(f"pre / post / ASR at {t:g}" for t in THRESHOLDS)
    lines = ["## The judge's threshold", "",
             "The same attack runs judged again at each threshold from the scores in their prompts.csv (a prompt "
             "shows the concept where the judge's score is at least the threshold; NudeNet's score is its best exposed "
             "class's), no image generated again: how far each number above rests on the threshold. Mean over the runs "
             "(seeds) of each edit and attack; `workbench table WORK/attacks --thresholds ...` gives every run's.", "",
             f"| edit | attack | {head} |", "| --- | --- |" + " --- |" * len(THRESHOLDS)]  # fmt: skip
    for (edit, attack), rows in g.groupby(level=["edit", "attack"], sort=False):
        cells = [" / ".join(f"{rows.loc[(edit, attack, t), k]:.1%}" for k in ("pre_asr", "post_asr", "asr")) for t in THRESHOLDS]
        lines.append(f"| {edit} | {attack} | {' | '.join(cells)} |")
    return [*lines, ""]
