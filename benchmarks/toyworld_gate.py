"""The toy world's quality gate and speed: oracle accuracy of the unpruned model on fixed-seed
samples, and the time for a 16-image batch at the default steps.

    python benchmarks/toyworld_gate.py --n 256
"""

from __future__ import annotations

import argparse
import time

import torch

from workbench.models.toyworld import load, load_oracle
from workbench.models.toyworld.gate import quality_gate
from workbench.models.toyworld.oracle import accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--guidance", type=float, default=1.5)
    args = ap.parse_args()
    torch.set_num_threads(2)
    pipe, oracle = load(), load_oracle()
    prompts = ["a red circle with stripes on snow"] * 16
    pipe(prompts[:2], num_inference_steps=2)  # warm-up
    times = []
    for _ in range(3):
        t = time.perf_counter()
        pipe(prompts, generator=[torch.Generator().manual_seed(i) for i in range(16)], output_type="pt")
        times.append(time.perf_counter() - t)
    print(f"16 images, 25 steps, guidance 1.5: {sorted(times)[1]:.2f} s (median of 3; target <= 10 s on 2 cores)")
    print("oracle on 4,096 fresh held-out images:", {k: round(v, 4) for k, v in accuracy(oracle).items()})
    t = time.perf_counter()
    gate = quality_gate(pipe, oracle, n=args.n, guidance=args.guidance)
    print(
        f"quality gate, n={args.n}, guidance {args.guidance} ({time.perf_counter() - t:.0f} s):",
        {k: round(v, 4) for k, v in gate.items()},
    )


if __name__ == "__main__":
    main()
