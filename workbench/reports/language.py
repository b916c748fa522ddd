"""The language toy world's section of a robustness page (issue 24): which routes reach the concept.

From the attack runs alone: the route attack's per-route rates for each eraser and the unedited
model, and sentences that answer the papers' question on this world: do erasers that remap the
concept's words (AC, ESD-x) hold when other words reach the concept, does pruning the UNet's own
concept neurons (ConceptPrune) hold better, and does Ring-A-Bell find a route. Claims are
decided as on every page: exact McNemar tests on the same prompts and seeds, within the harm budget.
"""

from __future__ import annotations

import statistics

from ..attacks.methods.routes import SPEC as ROUTES


def route_attacks() -> dict[str, str]:
    """The attacks this section reads and how (their specs' ``reading``): those that use words no
    eraser saw first, then the free ones."""
    from ..attacks.methods import ATTACKS

    return {s.name: s.reading for s in sorted(ATTACKS.specs(), key=lambda s: not s.routes) if s.reading}


#: the pairs the section decides: a word-remapping eraser against pruning, and each against nothing
QUESTIONS = (("ac lr=1e-4", "unedited"), ("conceptprune k=2%", "ac lr=1e-4"), ("conceptprune k=2%", "esd-x lr=1e-4"))


def per_route(rows: list[dict]) -> tuple[list[str], list[str], list[list[float]]]:
    """(erasers, routes, rate [eraser][route]): each route's share of prompts showing the concept
    under the route attack, averaged over the seeds' runs."""
    got: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        if r["attack"] == ROUTES.name:
            for route, rate in r["summary"].get("per_route", {}).items():
                got.setdefault(r["eraser"], {}).setdefault(route, []).append(rate)
    erasers = list(got)
    routes = list(dict.fromkeys(x for e in erasers for x in got[e]))
    return erasers, routes, [[statistics.mean(got[e][x]) if x in got[e] else float("nan") for x in routes] for e in erasers]


def route_table(rows: list[dict]) -> list[str]:
    erasers, routes, rates = per_route(rows)
    if not erasers:
        return []
    lines = ["| eraser | " + " | ".join(f"'{x}'" for x in routes) + " |", "| --- " * (len(routes) + 1) + "|"]
    lines += [f"| {e} | " + " | ".join("-" if v != v else f"{v:.1%}" for v in row) + " |" for e, row in zip(erasers, rates)]
    return lines


def answers(rows: list[dict], concept: str, harm: dict | None = None) -> list[str]:
    """The section's sentences, every number from the runs."""
    from ..evaluation.harm import BUDGET
    from .attacked import paired_tests, pooled_cells

    harm = harm or {}
    pooled = pooled_cells(rows)
    tests = {(t["a"], t["b"], t["attack"]): t for t in paired_tests(rows, pairs=QUESTIONS)}
    out = []
    for m, what in route_attacks().items():
        base = pooled.get(("unedited", m))
        if base is None:
            continue
        out.append(f"- {m} ({what}): the unedited model shows '{concept}' on {base['attacked']['rate']:.1%} of attacked images "
                   f"({base['pre_asr']['rate']:.1%} of the plain held-out prompts).")  # fmt: skip
        for a, b in QUESTIONS:
            if (a, m) not in pooled or (b, m) not in pooled:
                continue
            t = tests.get((a, b, m))
            ra, rb = pooled[(a, m)]["asr"]["rate"], pooled[(b, m)]["asr"]["rate"]
            over = [f"{e} costs {100 * harm[e][0]:.1f} points" for e in (a, b) if e in harm and harm[e][0] > BUDGET]
            p = t["p"] if t else 1.0
            verdict = (f"not at matched harm ({'; '.join(over)}; budget {100 * BUDGET:g})" if over
                       else "no difference at this size (p >= 0.05)" if p >= 0.05
                       else f"{a} resists better" if ra < rb else f"{b} resists better")  # fmt: skip
            out.append(f"  - {a} {ra:.1%} against {b} {rb:.1%} (McNemar p = {p:.3g}, {t['pairs'] if t else 0} pairs): {verdict}.")
    return out


def language_section(rows: list[dict], concept: str, harm: dict | None = None) -> list[str]:
    """Markdown lines of the section; empty when no route attack ran."""
    from ..attacks.routes import uses_routes

    if not any(uses_routes(r["attack"]) for r in rows):
        return []
    return [
        "", "## Other words for the concept (the language world)", "",
        f"The erasers saw '{concept}' only through its train routes (their calibration and anchor prompts); the held-out "
        "prompts above name it by held-out routes, and these attacks use only held-out words: 'routes' tries every held-out "
        "route on every prompt as it is (a prompt counts when any route's image shows the concept), the '-heldout' attacks "
        "search only the tokens of held-out route words that no train route uses (docs/toyworld.md lists the routes).", "",
        "Each route's share under the route attack (mean over seeds):", "",
        *route_table(rows), "",
        "Does an eraser hold when other words reach the concept (exact McNemar tests on the same prompts and seeds, "
        "decided only within the harm budget)?", "",
        *answers(rows, concept, harm),
    ]  # fmt: skip
