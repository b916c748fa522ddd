"""The language world's gates beside the original world's (issue 24), in one run on the same seeds:
the quality gate on the original captions for both worlds (the language world may fall at most 2
points below the original on any attribute), and the per-route gate of the language world for every
route (each held-out route must draw its concept in >= 90 % of images). Prints markdown rows.

    python benchmarks/toyworld_lang_gate.py --n 512 --per-route 32
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from workbench.models import load_pipeline
from workbench.models.toyworld import WEIGHTS_LANG, load_oracle
from workbench.models.toyworld.gate import quality_gate, route_gate
from workbench.models.toyworld.language import ROUTES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=512, help="quality-gate samples per world")
    ap.add_argument("--per-route", type=int, default=32, help="route-gate samples per route")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    oracle = load_oracle()
    old, lang = load_pipeline("toy"), load_pipeline("toy-lang")
    t = time.perf_counter()
    gates = {name: quality_gate(p, oracle, n=args.n, batch=128) for name, p in (("toy", old), ("toy-lang", lang))}
    t_gate = time.perf_counter() - t
    t = time.perf_counter()
    routes = route_gate(lang, oracle, per_route=args.per_route, split=None, batch=128)
    t_routes = time.perf_counter() - t
    attrs = ("shape", "colour", "texture", "scene")
    print(f"| quality gate, {args.n} fixed-seed original captions | toy | " + ", ".join(f"{a} {100 * gates['toy'][a]:.1f} %" for a in attrs)
          + f", degraded {100 * gates['toy']['degraded']:.1f} % | - |")  # fmt: skip
    worst = max(gates["toy"][a] - gates["toy-lang"][a] for a in attrs)
    print("| the same on toy-lang | toy-lang | " + ", ".join(f"{a} {100 * gates['toy-lang'][a]:.1f} %" for a in attrs)
          + f", degraded {100 * gates['toy-lang']['degraded']:.1f} % | largest fall {100 * worst:.1f} points "
          f"({'met' if worst <= 0.02 else 'NOT met'}: <= 2) |")  # fmt: skip
    held = {f"{r.value}: {r.phrase}": r.split for r in ROUTES}
    low = min(v for k, v in routes.items() if held[k] == "heldout")
    print(f"| per-route gate, {args.per_route} samples a route | toy-lang | lowest held-out route {100 * low:.1f} % | "
          f"each >= 90 % ({'met' if low >= 0.9 else 'NOT met'}) |")  # fmt: skip
    print()
    print("| route | split | drawn as its concept |")
    print("| --- | --- | --- |")
    for k, v in routes.items():
        print(f"| {k} | {held[k]} | {100 * v:.1f} % |")
    print(f"\n{t_gate:.0f} s for the two quality gates, {t_routes:.0f} s for the route gate")
    info = json.loads((WEIGHTS_LANG / "training.json").read_text())
    print("training.json:", {k: v for k, v in info.items() if k not in ("gate", "route_gate")})


if __name__ == "__main__":
    main()
