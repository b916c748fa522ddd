"""Write docs/explore.md and its figures (docs/figures/explore-*.png... named from their titles):
concept-neuron maps of 'striped' for the unedited model, ConceptPrune and ESD-x, and each edit under
UnlearnDiffAtk. `python docs/make_explore.py [--work stores/explore] [--edits stores/robustness/edits]`;
edits found in --edits (the robustness page's work folder) are reused, others are made (minutes on
2 cores), and everything made is kept in --work."""

import argparse

from workbench.reports.explore import run_explore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/explore.md")
    ap.add_argument("--work", default="stores/explore")
    ap.add_argument("--edits", default="stores/robustness/edits", help="a folder of edits to reuse (by cell key)")
    ap.add_argument("--concept", default="striped")
    ap.add_argument("--attack", default=None, help="the attack mapped (default: the reactivation attack, unlearndiff)")
    ap.add_argument("--n", type=int, default=8, help="target prompts mapped (and as many without the concept)")
    args = ap.parse_args()
    print(run_explore(args.out, args.work, args.edits, args.concept, args.attack, args.n))


if __name__ == "__main__":
    main()
