"""Fresh draws per training iteration, one at a time against ``AHEAD`` iterations in one sampler call.

Under the reference protocol every ESD / P-ESD iteration takes a new x_t: the frozen model samples a
calibration prompt from a new seed up to a random step. ``FreshESD.batches(n, ahead)`` draws
``ahead`` iterations' trajectories in one sampler call, each cut at its own step (the same draws:
tests/test_examples.py). This times ``n`` iterations' draws both ways, side by side in one process,
and counts the denoiser calls and the rows they carried.

    python benchmarks/fresh_draws.py --model toy                                  # CPU: seconds
    python benchmarks/fresh_draws.py --model sd15 --size 256 --steps 10 -n 8      # CPU at SD 1.5 size: minutes
    python benchmarks/fresh_draws.py --model sd15 --device cuda                   # benchmarks/gpu.sh
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from workbench.editing.examples import AHEAD, FreshESD
from workbench.models.families import denoiser_of

PROMPTS = {"toy": ["a red circle with stripes", "a blue square with stripes", "a green triangle with stripes on snow"],
           "sd15": ["a cat in the style of van gogh", "a dog in the style of van gogh", "a house in the style of van gogh"]}  # fmt: skip


def pipeline(model: str, device: str, size: int):
    if model == "toy":
        from workbench.models import load_pipeline

        return load_pipeline("toy", device=device)
    from workbench.models import sd15_random

    pipe = sd15_random(tokenizer="clip").to(device)
    pipe.unet.register_to_config(sample_size=size // 8)
    return pipe


def measure(pipe, model: str, n: int, ahead: int, steps: int | None, device: str) -> dict:
    calls = {"calls": 0, "rows": 0}

    def count(module, args, kwargs):
        calls["calls"] += 1
        calls["rows"] += (args[0] if args else kwargs["sample"]).shape[0]

    handle = denoiser_of(pipe).register_forward_pre_hook(count, with_kwargs=True)
    try:
        src = FreshESD(pipe, PROMPTS[model], steps=steps, guidance=3.0, batch=1, seed=0)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        got = sum(1 for _ in src.batches(n, ahead=ahead))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
    finally:
        handle.remove()
    assert got == n
    return {"ahead": ahead, "s_per_it": dt / n, "calls_per_it": calls["calls"] / n, "rows_per_it": calls["rows"] / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(PROMPTS), default="toy")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=512, help="SD 1.5 image size")
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's own; SD 1.5: 50)")
    ap.add_argument("-n", type=int, default=AHEAD, help="iterations drawn")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = pipeline(args.model, args.device, args.size)
    steps = args.steps if args.steps is not None or args.model == "toy" else 50
    rows = [measure(pipe, args.model, args.n, a, steps, args.device) for a in (1, min(AHEAD, args.n))]
    where = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"{platform.machine()}, {args.threads} threads"
    print(
        f"| fresh ESD draws, {args.model} ({where}; {args.n} iterations, batch 1, steps {steps or 'default'}) | "
        "seconds an iteration | denoiser calls an iteration | rows an iteration |"
    )
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['ahead']} iteration(s) a sampler call | {r['s_per_it']:.3f} | {r['calls_per_it']:.2f} | {r['rows_per_it']:.1f} |"
        )
    print(f"speed-up: {rows[0]['s_per_it'] / rows[1]['s_per_it']:.2f}x")


if __name__ == "__main__":
    main()
