"""docs/robustness.md: every eraser on the toy world as a frontier of concept rate against harm.

``run_robustness()`` (``workbench robustness``) sweeps each eraser's strength knob (k for masks,
the learning rate for fine-tuning), judges every edit with the oracle on the held-out prompts,
keeps one JSON per cell (so an interrupted run resumes), and writes the markdown with a table, the
frontier figure and sentences computed from the numbers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import xarray as xr

from ..editing.edits import Edit, load_edit
from ..editing.methods import ERASERS, conceptprune, esd, pesd
from ..editing.prune import random_like
from ..evaluation.erasers import esd_heldout, objective_loss
from ..evaluation.harm import ACCEPT
from ..evaluation.judges.pins import pin_line
from ..models import load_pipeline
from ..models.loading import TOY_WORLDS
from ..store.shards import chosen_shard, running_shard, shard_of, shared_step, wait_for_others
from .cells import RANDOM, erasers, grid, learned_mask, mean_over_seeds, run_cell, save_cell, trained, variant_bases, worst
from .kept import write_keeping

CONCEPTPRUNE, ESD, PESD = conceptprune.SPEC.name, esd.SPEC.name, pesd.SPEC.name


def run_robustness(out: str | Path = "docs/robustness.md", work: str | Path = "stores/robustness", concept: str = "striped",
                   seeds: tuple[int, ...] = (0,), n_per: int = 2, quick: bool = False, progress: bool = True,
                   core: bool = False, variants: bool = False, attacks: tuple[str, ...] = (),
                   attack_budget: int | None = None, model: str = "toy", judge: str | None = None, device: str = "cpu",
                   dtype=None, steps: int | None = None, guidance: float | None = None, t_hat: int | None = None,
                   iterations: int | None = None, cached: bool = False, every_eraser: bool = False,
                   shard: tuple[int, int] | str | None = None) -> dict:  # fmt: skip
    """Run (or resume) the sweep and write the markdown and its figure; return the cells' results.
    ``attacks`` (names from ``workbench.attacks.ATTACKS``) also attacks each eraser's main setting
    with every seed (``reports.attacked``) and adds the table of attack success. ``model`` is any
    SD-family model (``load_pipeline``), ``concept`` a name or concept file, ``judge`` overrides its
    judge; ``steps``, ``guidance`` (sampling, default the model's own), ``t_hat`` (ConceptPrune's)
    and ``iterations`` (every trained cell's) are for small smoke runs on real checkpoints. ``cached``
    adds ESD-x's and P-ESD's main settings trained on one cached set beside the reference protocol;
    ``every_eraser`` repeats every trained eraser's main setting on the core grid's other seeds.
    ``shard`` ("I/N"; default torchrun's or accelerate's RANK of WORLD_SIZE) makes and judges this
    shard's cells and attack runs first, then what other shards leave (``store.shards``): every
    shard writes the same page once the whole grid is on disk."""
    out, work = Path(out), Path(work)
    from ..attacks.methods import ATTACKS

    for a in attacks:  # an unknown name fails before any cell, naming the registered ones
        ATTACKS[a]
    (work / "cells").mkdir(parents=True, exist_ok=True)
    shard = chosen_shard(shard)
    with running_shard(work, shard):  # held from the start: the other shards wait while it runs
        import torch

        from ..evaluation.judges import judge_of
        from ..prompts.concepts import get_concept, single

        c = single(get_concept(concept, n_per=n_per, judge=judge), "a robustness page")
        pipe = load_pipeline(model, device=device, dtype=dtype or torch.float32)
        oracle = judge_of(None, c, device=device)
        c.check_model(model)
        toy = model in TOY_WORLDS
        concept = c.name if toy and not str(c.source).endswith(".toml") else c
        setting = {k: v for k, v in {"steps": steps, "guidance": guidance, "t_hat": t_hat}.items() if v is not None}
        t0 = time.time()
        cells = grid(c.name, seeds, quick, core, variants, iterations, cached, every_eraser)
        # the random controls read their eraser's mask: run them last
        cells.sort(key=lambda c: c.method == RANDOM)
        results = _make_cells(pipe, oracle, cells, concept, work, n_per, setting, shard, progress)
        attack_rows, harm = [], {}
        if attacks:
            from .attacked import run_attacks

            attack_rows = run_attacks(pipe, oracle, cells, concept, work, seeds, attacks, attack_budget, progress,
                                      setting.get("steps"), setting.get("guidance"), shard)  # fmt: skip
            harm = _attacked_harm(cells, results, seeds)
        with shared_step(work, shard, "page"):
            reactivation = _reactivation(pipe, attack_rows, attacks, concept, work, seeds, setting, progress)
            write_markdown(out, list(results.values()), c.name, round(time.time() - t0), n_per, quick, core, attack_rows, harm, work,
                           reactivation, world=TOY_WORLDS.get(model, f"`{model}`"))  # fmt: skip
        return results


def _reactivation(pipe, attack_rows: list, attacks: tuple, concept, work: Path, seeds: tuple, setting: dict, progress: bool):
    """The concept neurons' reactivation per eraser under the reactivation attack (None where it was not run)."""
    from ..attacks.methods import reactivation_attack

    if reactivation_attack() not in attacks:
        return None
    from .attacked import reactivation_runs
    from .reactivation import compare_reactivation

    reactivation = xr.concat([compare_reactivation(pipe, reactivation_runs(attack_rows, work, s), concept,
                                                   work / "reactivation" / f"s{s}", progress=progress,
                                                   steps=setting.get("steps", 25), t_hat=setting.get("t_hat", 10))
                              for s in seeds],
                             "seed").assign_coords(seed=list(seeds))  # fmt: skip
    # strings as zarr v3's variable-length type (numpy's fixed-width one has no v3 spec yet)
    labels = {d: reactivation[d].values.astype(object) for d in ("eraser", "group", "run")}
    reactivation.assign_coords(labels).to_zarr(work / "reactivation" / "summary.zarr", mode="w", consolidated=False)
    return reactivation


def _make_cells(pipe, oracle, cells: list, concept, work: Path, n_per: int, setting: dict, shard, progress: bool) -> dict:
    """Make and judge this shard's cells (all of them unsharded), then, once no other shard runs, any
    still missing; the same for the ESD losses. Every cell's JSON, by key."""
    from tqdm.auto import tqdm

    def make(todo: list, desc: str) -> None:
        for cell in tqdm([c for c in todo if not (work / "cells" / f"{c.key}.json").exists()], desc=desc, disable=not progress):
            save_cell(work / "cells" / f"{cell.key}.json", run_cell(pipe, oracle, cell, concept, work, n_per, setting))

    mine = shard_of(cells, shard, lambda c: c.base_key if c.method == RANDOM else c.key)  # a control with its eraser
    make(mine, "erasers" if shard is None else f"erasers, shard {shard[0]}/{shard[1]}")
    wait_for_others(work, shard, lambda: all((work / "cells" / f"{c.key}.json").exists() for c in cells))
    make(cells, "erasers other shards left")
    results = dict(zip([c.key for c in cells], _reread(work, cells)))
    _esd_losses(pipe, mine, results, concept, work, setting)
    if shard is not None:  # the other shards' losses, once they are written (or a killed shard's, made here)
        wait_for_others(work, shard, lambda: all("esd_loss" in r for r in _reread(work, cells)))
        results = dict(zip([c.key for c in cells], _reread(work, cells)))
        _esd_losses(pipe, cells, results, concept, work, setting)
    return results


def _reread(work: Path, cells: list) -> list[dict]:
    """Every cell's JSON as it is on disk now (other shards add their ESD losses)."""
    return [json.loads((work / "cells" / f"{c.key}.json").read_text()) for c in cells]


def _esd_losses(pipe, cells: list, results: dict, concept, work: Path, setting: dict) -> None:
    """How far each edit meets ESD's objective: the loss over one fixed held-out set of ESD's draws,
    computed once per cell and kept in its JSON (``esd_loss``, ``esd_loss_unedited``)."""
    ex = None
    for cell in cells:
        path = work / "cells" / f"{cell.key}.json"
        r = results[cell.key]
        if "esd_loss" in r:
            continue
        ex = esd_heldout(pipe, concept, 64, setting.get("steps"), setting.get("guidance")) if ex is None else ex
        if cell.method == RANDOM:
            base = load_edit(work / "edits" / cell.base_key)
            edit = Edit(RANDOM, {}, masks=random_like(base.masks, seed=cell.draw_seed))
        else:
            edit = load_edit(work / "edits" / cell.key)
        r["esd_loss"] = objective_loss(pipe, ex, edit)
        r["esd_loss_unedited"] = objective_loss(pipe, ex)
        path.write_text(json.dumps(r, default=float))


def _attacked_harm(cells: list, results: dict, seeds: tuple[int, ...]) -> dict[str, tuple[float, float]]:
    """Each attacked eraser's mean worst drop and toy FID over the seeds (the unedited model: 0 and its own)."""
    from .attacked import attacked_cells

    rows: dict[str, list[dict]] = {}
    for seed in seeds:
        for name, cell in attacked_cells(cells, seed):
            if cell is not None:
                rows.setdefault(name, []).append(results[cell.key])
    harm = {n: (sum(worst(r) for r in rs) / len(rs), sum(r["after"].get("fid", float("nan")) for r in rs) / len(rs))
            for n, rs in rows.items()}  # fmt: skip
    harm["unedited"] = (0.0, results[cells[0].key]["before"].get("fid", float("nan")))
    return harm


def _num(x, fmt: str) -> str:
    """A number in a table cell; '-' where the judge gives none."""
    return "-" if x is None or x != x else format(x, fmt)


def _gap_cell(r: dict) -> str:
    o = r.get("options", {})
    if r["method"].startswith("random"):  # a control trains nothing (cells made before kept P-ESD's info)
        return "-"
    return f"{o['train_loss']:.4f} / {o['heldout_loss']:.4f}" if "train_loss" in o else "-"


def _walls(rows: list[dict]) -> str:
    known = [r["wall"] for r in rows if r.get("wall") is not None]
    total = f"{sum(known) / 60:.0f} min for {len(known)} of {len(rows)} cells"
    return total + (" (the others were made before cells kept their time)" if len(known) < len(rows) else "")


def claims(rows: list[dict], best: dict, base: dict, concept: str) -> list[str]:
    """Sentences computed from the numbers: does a learned mask beat ConceptPrune and ESD on clean
    erasure at matched harm, and does meeting ESD's objective erase the concept?"""
    out = ["The P-ESD paper claims that a mask learned with ESD's objective erases more robustly than ESD at "
           "comparable FID; these sentences test the clean half, at matched harm (the attacked half: 'Under attack' "
           "below, when the sweep ran with --attacks)."]  # fmt: skip
    rate = {m: best[m]["rate"] for m in best}
    for mine, rival in ((sp.name, rival) for sp in erasers() for rival in sp.claims):
        if mine in rate and rival in rate:
            verb = "erases more than" if rate[mine] < rate[rival] else "does not erase more than"
            out.append(
                f"- Within {100 * ACCEPT:g} points of harm, {mine} ({rate[mine]:.1%} left) {verb} {rival} ({rate[rival]:.1%} left)."
            )
        elif rival in rate:
            out.append(
                f"- No {mine} setting stays within {100 * ACCEPT:g} points of harm; {rival} leaves {rate[rival]:.1%} there."
            )
    unedited = rows[0].get("esd_loss_unedited")
    out += memorising(rows, base, concept, unedited)
    cp = [r for r in rows if r["method"] == CONCEPTPRUNE and r.get("esd_loss") is not None and unedited]
    if cp:
        up = sum(r["esd_loss"] > unedited for r in cp)
        what = "raise" if up == len(cp) else "lower" if up == 0 else "move"
        out.append(f"- ConceptPrune's masks {what} ESD's loss (" + ", ".join(f"{r['label']}: {r['esd_loss']:.4f}" for r in cp)
                   + f"; unedited {unedited:.4f}).")  # fmt: skip
    return out


def _gap(rs: list[dict]) -> tuple[float, float] | None:
    """Mean train and held-out loss of the edits' own objective over these rows (None if unmeasured)."""
    pairs = [(r["options"]["train_loss"], r["options"]["heldout_loss"]) for r in rs if "train_loss" in r.get("options", {})]
    if not pairs:
        return None
    return sum(a for a, _ in pairs) / len(pairs), sum(b for _, b in pairs) / len(pairs)


def memorising(rows: list[dict], base: dict, concept: str, unedited: float | None) -> list[str]:
    """Sentences on the generalisation gap and the question it raises: does a learned mask erase once
    it cannot memorise a fixed set (fresh draws), and how does it compare with the cached set?"""
    import statistics

    out = []
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if trained(r["method"].removesuffix(" cached")):
            groups.setdefault((r["method"], r["label"]), []).append(r)
    for (method, label), rs in groups.items():
        gap, rates = _gap(rs), [r["after"]["concept_rate"] for r in rs]
        held = [r["esd_loss"] for r in rs if r.get("esd_loss") is not None]
        if gap is None:
            continue
        sd = f" ± {statistics.pstdev(rates):.1%}" if len(rates) > 1 else ""
        o = rs[0].get("options", {})
        how = f" (batch {o['batch']}, {o['iterations']} iterations)" if "batch" in o and "iterations" in o else ""
        esd = (
            f"; ESD's loss on the fixed held-out draws {statistics.mean(held):.4f} (unedited {unedited:.4f})"
            if held and unedited
            else ""
        )
        out.append(f"- {method} {label}{how}: its own objective's loss {gap[0]:.4f} on the draws it trained on, {gap[1]:.4f} on "
                   f"the same prompts and steps from unseen seeds (held-out / train {gap[1] / gap[0]:.2f}){esd}; "
                   f"'{concept}' still shown on {statistics.mean(rates):.1%}{sd} of target images (mean of {len(rs)}).")  # fmt: skip
    out += objective_met(groups, concept, unedited)
    for method in (PESD, ESD):
        fresh = {lb: rs for (m, lb), rs in groups.items() if m == method}
        cached = {lb: rs for (m, lb), rs in groups.items() if m == f"{method} cached"}
        for label in sorted(set(fresh) & set(cached)):
            f = [r["after"]["concept_rate"] for r in fresh[label]]
            c = [r["after"]["concept_rate"] for r in cached[label]]
            mf, mc = statistics.mean(f), statistics.mean(c)
            spread = max(statistics.pstdev(f) if len(f) > 1 else 0.0, statistics.pstdev(c) if len(c) > 1 else 0.0)
            verdict = ("erases more than" if mf < mc - max(spread, 0.05) else "erases less than" if mf > mc + max(spread, 0.05)
                       else "erases about as much as")  # fmt: skip
            out.append(f"- Fresh draws against the cached set: {method} {label} trained on fresh draws {verdict} on the "
                       f"cached set ({mf:.1%} against {mc:.1%} of target images still '{concept}', {len(f)} and {len(c)} "
                       "seed(s); 'about as much' within the larger seed spread or 5 points).")  # fmt: skip
    return out


def objective_met(groups: dict[tuple, list[dict]], concept: str, unedited: float | None) -> list[str]:
    """Does meeting ESD's objective erase? Each learned ESD mask's ESD loss on the fixed held-out
    draws, as a share of the way ESD-x's main setting goes from the unedited model's, beside its
    concept rate and whether it fits its training draws better than unseen seeds."""
    import statistics

    esd = [r["esd_loss"] for r in groups.get((ESD, "lr=0.0001"), []) if r.get("esd_loss") is not None]
    if not esd or not unedited:
        return []
    ref = statistics.mean(esd)
    out = []
    for (method, label), rs in groups.items():
        if not method.startswith(PESD):
            continue
        loss = [r["esd_loss"] for r in rs if r.get("esd_loss") is not None]
        gap, rate = _gap(rs), statistics.mean(r["after"]["concept_rate"] for r in rs)
        if not loss or gap is None:
            continue
        share = (unedited - statistics.mean(loss)) / (unedited - ref) if unedited != ref else float("nan")
        fit = ("fits its training draws no better than unseen seeds" if gap[1] / gap[0] < 1.1
               else f"fits its training draws better than unseen seeds (held-out / train {gap[1] / gap[0]:.2f})")  # fmt: skip
        out.append(f"- ESD's objective and erasing: {method} {label} lowers ESD's loss on the fixed held-out draws from "
                   f"{unedited:.4f} to {statistics.mean(loss):.4f}, {share:.0%} of the way ESD-x lr=0.0001 goes (to {ref:.4f}); "
                   f"it {fit}, and '{concept}' is still shown on {rate:.1%} of target images (mean of {len(rs)}).")  # fmt: skip
    return out


def variant_notes(settings: list[dict]) -> list[str]:
    """One sentence per variant setting: its concept rate and harm beside those of its bases at the
    same setting (ESD at the same lr, P-ESD and ConceptPrune at the same k)."""
    out = []
    index = {(m["method"], m["label"]): m for m in settings}
    bases = variant_bases()
    for m in settings:
        if m["method"] not in bases:
            continue
        parts = []
        for base in bases[m["method"]]:
            for label in m["label"].split(" "):
                b = index.get((base, label))
                if b is not None:
                    parts.append(f"{base} {label}: {b['rate']:.1%} left, {100 * b['worst']:.1f} points (mean of {b['n']})")
        out.append(f"- {m['method']} {m['label']}: {m['rate']:.1%} left, worst drop {100 * m['worst']:.1f} points"
                   + (f"; against {'; '.join(parts)}" if parts else "") + ".")  # fmt: skip
    return out


def core_columns() -> list[tuple[str, str]]:
    """The columns of the other concepts' table: (method, label) of every eraser's core settings
    marked ``column``, then the random control of the first setting that draws controls."""
    cols = [(sp.name, s.label) for sp in erasers() for s in sp.grid("core", 200) if s.column]
    controls = [s.label for sp in erasers() for s in sp.grid("core", 200) if s.controls]
    return cols + [(RANDOM, lb) for lb in controls[:1]]


def other_concepts(work: Path, docs: Path) -> list[str]:
    """Markdown lines: the core settings on every other concept whose sweep sits beside ``work``
    (``<work>-<concept>/cells``), concept rate / worst drop per eraser, linked to its own page."""
    columns = core_columns()
    found: dict[str, list[dict]] = {}
    for cells in sorted(work.parent.glob(f"{work.name}-*/cells")):
        rows = [json.loads(p.read_text()) for p in sorted(cells.glob("*.json"))]
        if rows:
            found[rows[0]["concept"]] = rows
    if not found:
        return []
    lines = ["", "## The other concepts (one seed)", "",
             "Each concept's own sweep (`workbench robustness --concept C --work stores/robustness-C --out "
             "docs/robustness-C.md`, `--core` for the main settings), one seed: share of target images still "
             "showing the concept / worst drop of another attribute (points).", "",
             "| concept | unedited | " + " | ".join(f"{m} {lb}" for m, lb in columns) + " |",
             "| --- | --- | " + " | ".join("---" for _ in columns) + " |"]  # fmt: skip
    for concept, rows in found.items():
        settings = {(m["method"], m["label"]): m for m in mean_over_seeds([r for r in rows if r["seed"] == 0])}
        page = docs / f"robustness-{concept}.md"
        name = f"[{concept}]({page.name})" if page.exists() else concept
        cols = [f"{100 * settings[c]['rate']:.0f}% / {100 * settings[c]['worst']:.0f}" if c in settings else "-" for c in columns]
        lines.append(f"| {name} | {rows[0]['before']['concept_rate']:.0%} | " + " | ".join(cols) + " |")
    return lines


def main_methods() -> set[str]:
    """The rows drawn as lines in the frontier: every registered eraser and the random control;
    every other row (variants, cached twins) is a marker."""
    return {*ERASERS, RANDOM}


def frontier_figure(rows: list[dict], concept: str):
    """Concept rate against harm: the main erasers as lines over their strength, variants as
    unconnected markers of their own symbol; settings in the hover text, not printed on the plot."""
    import plotly.graph_objects as go

    fig = go.Figure()
    settings = mean_over_seeds(rows)
    symbols = iter(("diamond", "square", "cross", "x", "triangle-up", "star", "hexagon", "pentagon", "triangle-down"))
    mains = main_methods()
    for method in dict.fromkeys(m["method"] for m in settings):
        pts = sorted((m for m in settings if m["method"] == method), key=lambda m: m["worst"])
        main = method in mains
        fig.add_trace(go.Scatter(x=[100 * m["worst"] for m in pts], y=[100 * m["rate"] for m in pts],
                                 error_x={"array": [100 * m["worst_sd"] for m in pts]}, error_y={"array": [100 * m["rate_sd"] for m in pts]},
                                 mode="lines+markers" if main else "markers", name=method,
                                 marker={"size": 8 if main else 11, **({} if main else {"symbol": next(symbols, "circle-open")})},
                                 text=[f"{method} {m['label']} ({m['n']} seed(s))" for m in pts],
                                 hovertemplate="%{text}<br>worst drop %{x:.1f} points<br>concept %{y:.1f}%<extra></extra>"))  # fmt: skip
    fig.add_vline(x=5, line_dash="dot", annotation_text="5-point harm budget")
    fig.update_layout(title=f"Erasing '{concept}': concept rate against the worst drop of another attribute (lower left is better)",
                      xaxis_title="worst drop of another attribute on other prompts (points)",
                      yaxis_title=f"'{concept}' shown on target prompts (%)", template="plotly_white",
                      legend_title_text="eraser (lines: over its strength; markers: variants)")  # fmt: skip
    return fig


def write_markdown(out: Path, rows: list[dict], concept: str, seconds: int, n_per: int, quick: bool, core: bool = False,
                   attack_rows: list[dict] | None = None, harm: dict | None = None, work: Path | None = None,
                   reactivation=None, world: str = "the toy world") -> Path:  # fmt: skip
    """docs/robustness.md from the judged cells: one section function after another."""
    from .attacked import attack_section, threshold_section
    from .language import language_section
    from .plots import write_images

    out.parent.mkdir(parents=True, exist_ok=True)
    figs = write_images([(f"robustness frontier {concept}", frontier_figure(rows, concept))], out.parent / "figures")
    settings = mean_over_seeds(rows)
    lines = table_section(rows, concept, seconds, n_per, quick, core, figs, world)
    lines += best_section(rows, settings, concept)
    lines += seeds_section(settings)
    lines += other_concepts(work, out.parent) if work is not None else []
    lines += attack_section(attack_rows or [], concept, harm, out.parent / "figures")
    lines += threshold_section(work)
    lines += language_section(attack_rows or [], concept, harm)
    if reactivation is not None:
        lines += reactivation_section(reactivation, out.parent / "figures")
    return write_keeping(out, "\n".join(lines) + "\n" + ASSUMPTIONS, "workbench robustness")


def table_section(rows: list[dict], concept: str, seconds: int, n_per: int, quick: bool, core: bool, figs: dict,
                  world: str = "the toy world") -> list[str]:  # fmt: skip
    """The heading, what the run was, every cell's row and the frontier figure."""
    base = rows[0]["before"]
    utility = "fid" if "fid" in base else "clip_score" if "clip_score" in base else None
    toy = world in TOY_WORLDS.values()
    held = (f"Held-out captions: `toy:eval`, {n_per} per texture x colour x shape" if toy else
            f"Held-out prompts: the concept's (`workbench concepts {concept}`), {n_per} seed(s) each")  # fmt: skip
    first = min(r["seed"] for r in rows)
    repeated = list(dict.fromkeys(r["method"] for r in rows if r["seed"] != first and r["method"] != "random"))
    core_what = "core grid: the main settings of each eraser" + (
        f"; seeds after the first repeat the main settings of {', '.join(repeated)}" if repeated else "")  # fmt: skip
    if concept.startswith("lang:"):
        held += f", every caption of '{concept[5:]}' naming it by a held-out route in turn (docs/toyworld.md)"
    judge = "the oracle" if toy else f"the judge `{rows[0].get('judge', 'of the concept')}`"
    lines = [
        f"# Robust erasing on {world}: ConceptPrune, ESD, AC, P-ESD, P-AC",
        "",
        f"Written by `workbench robustness` ({'quick smoke run, not results' if quick else core_what if core else 'full run'}); this run took {seconds} s, "
        f"reusing the cells already under its --work folder; making and judging the cells took {_walls(rows)}. "
        f"{held}; concept '{concept}'. Each row is one edit, "
        f"judged by {judge}; 'worst drop' is the harm protocol's (`evaluation/harm.py`): the largest fall of the "
        f"{', '.join(sorted(base['other_accuracy']))} accuracy on the non-target prompts (points), the erased concept's own "
        f"attribute on its siblings included; degraded images are their own column. Unedited: '{concept}' shown on {base['concept_rate']:.1%} of target prompts. "
        "Trained erasers draw their examples as the reference code does (`editing/examples.py`): ESD and P-ESD a new "
        "x_t every iteration (a calibration prompt, a new seed, a random stopping step of the frozen model's sampling); "
        "AC and P-AC a pool of the frozen model's anchor images, noised anew each iteration at a uniform timestep; the "
        "settings are in each edit's `edit.json`. Rows named '... cached' train on one cached set instead (every UNet "
        "call of the frozen model sampling the calibration prompts from their own seeds: the old protocol's examples), "
        "at the same batch and iterations as their fresh twins, so that only where the examples come from differs. "
        "'train / held-out' is the edit's own objective's loss on draws it trained on and on the same prompts and steps "
        "from seeds it never saw. 'ESD loss' is ESD's objective on one fixed set of 64 of its draws from unseen seeds, "
        f"the same for every row; unedited: {rows[0].get('esd_loss_unedited', float('nan')):.4f}. "
        f"{pin_line(rows[0].get('judge_pinned'))}",
        "",
        f"| method | setting | seed | concept rate | worst drop | degraded | {'toy FID' if utility == 'fid' else 'CLIP score' if utility else 'utility'} | density | train / held-out | ESD loss | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        d = f"{r['density']:.2%}" if r.get("density") is not None else "-"
        lines.append(f"| {r['method']} | {r['label']} | {r['seed']} | {r['after']['concept_rate']:.1%} | {_num(100 * worst(r), '.1f')} | "
                     f"{_num(r['after'].get('degraded_rate'), '.1%')} | {_num(r['after'].get(utility), '.1f')} | {d} | "
                     f"{_gap_cell(r)} | {r.get('esd_loss', float('nan')):.4f} | "
                     f"{r['seconds']} |")  # fmt: skip
    lines += [
        "",
        *[f"![{t}](figures/{name})" for t, name in figs.items()],
        "",
    ]
    return lines


def best_section(rows: list[dict], settings: list[dict], concept: str) -> list[str]:
    """Each eraser's best point within ``ACCEPT`` of harm, the strong learned masks, the claims and the variants."""
    base = rows[0]["before"]
    lines = [f"## Best point of each eraser within {100 * ACCEPT:g} points of harm", ""]
    best = {}
    for m in settings:
        if m["worst"] <= ACCEPT and (m["method"] not in best or m["rate"] < best[m["method"]]["rate"]):
            best[m["method"]] = m
    for method in dict.fromkeys(r["method"] for r in rows):
        if method in best:
            m = best[method]
            lines.append(f"- {method}: {m['rate']:.1%} of target images still show '{concept}' at {m['label']} "
                         f"(worst drop {100 * m['worst']:.1f} points; mean of {m['n']} seed(s))")  # fmt: skip
        else:
            lines.append(f"- {method}: no setting stays within {100 * ACCEPT:g} points of harm")
    strong = [
        m for m in settings if learned_mask(m["method"]) and m["rate"] <= 0.1 * base["concept_rate"] and m["worst"] <= ACCEPT
    ]
    lines += ["", f"A learned mask reaching >= 90 % cut with every other attribute within {100 * ACCEPT:g} points: "
              + (", ".join(f"{m['method']} {m['label']} (density {m['density']:.2%})" for m in strong) or "none in this sweep") + "."]  # fmt: skip
    lines += ["", "## Against the papers' claims", "", *claims(rows, best, base, concept)]
    notes = variant_notes(settings)
    if notes:
        lines += ["", "## Variants (first seed)", "",
                  "The preservation term (`--preserve`: the frozen model's prediction held on the reference prompts, "
                  "weight 1), ConceptPrune's mask as the learned mask's start (`--init conceptprune`) and the mask "
                  "trained together with the ESD-x weights (`--tune esd-x --tune-lr LR`), each beside its bases:", "", *notes]  # fmt: skip
    return lines


def seeds_section(settings: list[dict]) -> list[str]:
    """Mean and spread over seeds of every setting."""
    lines = [
        "",
        "## Mean and spread over seeds",
        "",
        "| method | setting | seeds | concept rate | worst drop (points) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in settings:
        lines.append(f"| {m['method']} | {m['label']} | {m['n']} | {m['rate']:.1%} ± {m['rate_sd']:.1%} | "
                     f"{100 * m['worst']:.1f} ± {100 * m['worst_sd']:.1f} |")  # fmt: skip
    return lines


def reactivation_section(reactivation, figures: Path) -> list[str]:
    """Which neurons wake up under unlearndiff, across erasers."""
    from .reactivation import compare_section

    return ["", "### Which neurons wake up (unlearndiff)", "",
            "For each eraser's unlearndiff run of each seed: the concept neurons (columns of ConceptPrune's skilled masks, "
            f"k = {reactivation.attrs['k']:g} %, t-hat = {reactivation.attrs['t_hat']}, on the unedited model) and the others; "
            "sensitivity is the change of a neuron's Wanda-scaled activation from the plain to the attacked prompts on the "
            "edited model, in units of its site's mean, over every UNet call (workbench/analysis/sensitivity.py); activity is "
            "the concept neurons' mean Wanda-scaled activation on the unedited model, the edited one, and the edited one under "
            "attack. All scaled by the unedited weights, and measured at the FFN's second layer's input: a mask on "
            "ff.net.2 zeroes weights, not these activations, so a masked edit changes them only through the layers "
            "before; a neuron it pruned can be active and still silent.", "",
            *compare_section(reactivation, figures)]  # fmt: skip


ASSUMPTIONS = """
## What we assumed (P-ESD and P-AC are rebuilt from the abstract and captions)

- The mask is over weights of the chosen sites (default the FFN-2 `ff.net.2` weights, the same sites
  ConceptPrune prunes), True = pruned, with ConceptPrune's budget: floor(k % of the inputs) per
  output row (at least one). The weights stay frozen; the masks file is the whole edit.
- Objective: ESD's (or AC's) regression of the edited model's prediction for the concept prompt at
  the frozen model's x_t onto the frozen target, drawn as the eraser's reference code draws it
  (fresh every iteration; `--examples cached` for one fixed set: the old protocol, a deviation).
- Relaxation: straight-through per-row top-k (hard forward, sigmoid gradient) by default; a
  temperature-annealed sigmoid and hard-concrete gates with a penalty holding the expected pruned
  share at k are options (`--relaxation`); both are projected to the per-row top-k at the end.
- Mask logits start small and random (`--init uniform`), or at |W| standardised per row (`wanda`).
- Variants (`--variants`, first seed): `--preserve` adds the frozen model's prediction on the
  reference prompts (the same captions without the concept) as a second regression term, weight 1;
  `--init conceptprune` starts the mask logits at +2 on ConceptPrune's mask at the same k and t_hat
  (-2 elsewhere); `--tune esd-x --tune-lr LR` trains the cross-attention parameters with Adam at LR
  in the same loop as the mask logits, so the edit holds both.
- ESD-x trains every cross-attention (attn2) parameter; AC, as its reference, the cross-attention
  key and value matrices (`esd-x-kv`). AC's anchor for a concept prompt is its paired reference
  prompt (the same caption without the concept); its x_t are the anchor images, forward-noised.
- Against the reference code, stated rather than copied: one optimiser (Adam) for every eraser (AC's
  uses AdamW, weight decay 0.01); AC's anchor images stay latents (the reference decodes, saves,
  flips and re-encodes them); the toy world samples x_t at its own guidance (1.5), not SD's 3 and 6.
"""
