"""Seconds per attack on the toy world, each attack against one ConceptPrune edit (k=2 %, 'striped').

    python benchmarks/attacks.py [--budget 50] [--steps 25] [--attacks unlearndiff,ringabell,...]

Side by side in one process, for every attack of ``workbench.attacks``: the whole run at the
budget (16 target prompts: the edit's images before, the attack, the attacked images judged), the
same at budget 1 (the fixed part: images, the frozen model's examples), the seconds per optimiser
step (or Ring-A-Bell generation) from the two, and the ratio of the run to one generation of the
16 target images with the edit applied. Threads: torch's default (the machine's cores).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch

from workbench.attacks import ATTACKS, attack, targets
from workbench.editing.edits import applied
from workbench.evaluation.erasers import make_edit
from workbench.evaluation.toy import generate
from workbench.models import load_pipeline
from workbench.models.toyworld import load_oracle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=50, help="optimiser steps / generations of the timed run")
    ap.add_argument("--steps", type=int, default=25, help="denoising steps of every image")
    ap.add_argument("--attacks", default=",".join(ATTACKS), help="comma-separated attack names")
    a = ap.parse_args()
    pipe, oracle = load_pipeline("toy"), load_oracle()
    edit = make_edit(pipe, "conceptprune", "striped", {"k": 2.0}, {"progress": False})
    tg = targets("striped")
    t0 = time.perf_counter()
    with applied(pipe, edit):
        generate(pipe, [p.text for p in tg], [p.seed for p in tg], a.steps, 1.5)
    gen = time.perf_counter() - t0
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    print(f"one generation of the {len(tg)} target images ({a.steps} steps): {gen:.1f} s")
    print(f"| attack | seconds at budget {a.budget} | seconds at budget 1 | seconds per step | run / one generation |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.attacks.split(","):
            secs = []
            for b in (a.budget, 1):
                t0 = time.perf_counter()
                attack(pipe, oracle, edit, "striped", name, budget=b, steps=a.steps, out=f"{tmp}/{name}-{b}")
                secs.append(time.perf_counter() - t0)
            per = (secs[0] - secs[1]) / max(a.budget - 1, 1)
            print(f"| {name} | {secs[0]:.1f} | {secs[1]:.1f} | {per:.2f} | {secs[0] / gen:.1f} |", flush=True)


if __name__ == "__main__":
    main()
