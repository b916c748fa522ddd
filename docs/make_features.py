"""Write docs/features.md and its CSVs: does a toy concept live in a feature more than in a neuron?
`python docs/make_features.py [--work stores/features]`; everything made is kept in --work and a
stopped run resumes (the store, its samples, each SAE and each erasure cell)."""

import argparse

from workbench.reports.features import run_features


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/features.md")
    ap.add_argument("--work", default="stores/features")
    args = ap.parse_args()
    print(run_features(args.out, args.work))


if __name__ == "__main__":
    main()
