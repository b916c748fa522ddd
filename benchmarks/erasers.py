"""Erasers and attacks at SD 1.5 size: seconds and peak memory per training iteration and per
attack step, side by side in one process.

    python benchmarks/erasers.py --device cpu --size 256 --iterations 2     # 2 CPU cores: minutes
    python benchmarks/erasers.py --device cuda --iterations 10              # a lent GPU (benchmarks/gpu.sh)

The pipeline is ``sd15_random(tokenizer="clip")``: the full-size SD1.5 UNet (random weights cost
the same compute as real ones), a 768-wide text encoder with SD's 77 positions, a small VAE. The
frozen model's cached examples (every UNet call of sampling the prompts) are made once and timed
apart; each row then times ``--iterations`` iterations after one warm-up. The 'fresh' rows are the
reference protocol (the default): each iteration also samples a new x_t with the frozen model, a
trajectory cut at a random step of ``--fresh-steps`` (the reference's 50) at guidance 3, batch 1. ``--markdown`` prints the table
rows for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import torch

from workbench.attacks.prompt_search import gradient_attack
from workbench.editing.examples import FreshESD
from workbench.editing.learning import finetune, frozen_examples, learn_masks
from workbench.editing.options import GUIDED_AWAY
from workbench.models import sd15_random
from workbench.models.slots import placeholder

PROMPTS = ["a cat in the style of van gogh", "a dog in the style of van gogh", "a house in the style of van gogh",
           "a tree in the style of van gogh"]  # fmt: skip


def peak_mb(dev: str) -> float:
    if dev.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset(dev: str) -> None:
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def timed(dev: str, fn, iterations: int) -> dict:
    """Seconds per iteration of ``fn(n)`` (n iterations), from the difference of an n+1 and a 1-iteration run."""
    reset(dev)
    t = time.perf_counter()
    fn(1)
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    one = time.perf_counter() - t
    t = time.perf_counter()
    fn(iterations + 1)
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
    more = time.perf_counter() - t
    return {"s_per_iteration": (more - one) / iterations, "first_s": one, "peak_mb": peak_mb(dev)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", type=int, default=512, help="image size (latents size/8; 256 keeps a CPU run to minutes)")
    ap.add_argument(
        "--steps", type=int, default=2, help="sampling steps of the frozen examples (their count, not the cost per iteration)"
    )
    ap.add_argument("--batch", type=int, default=8, help="examples per training iteration (the erasers' default)")
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--fresh-steps", type=int, default=50, help="the fresh rows' sampling steps (the reference's 50)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = args.device
    pipe = sd15_random(tokenizer="clip").to(dev)
    pipe.unet.register_to_config(sample_size=args.size // 8)  # the pipeline's default height and width
    seeds = list(range(len(PROMPTS)))
    rows = {}
    reset(dev)
    t = time.perf_counter()
    ex = frozen_examples(pipe, PROMPTS, seeds, GUIDED_AWAY, steps=args.steps, guidance=7.5)
    rows["frozen examples"] = {"s_total": time.perf_counter() - t, "examples": len(ex), "peak_mb": peak_mb(dev)}
    rows["esd-x iteration"] = timed(dev, lambda n: finetune(pipe, ex, "esd-x", iterations=n, batch=args.batch, progress=False),
                                    args.iterations)  # fmt: skip
    rows["p-esd iteration (ffn2 mask, ste-topk)"] = timed(
        dev, lambda n: learn_masks(pipe, ex, "ffn2", k=2.0, iterations=n, batch=args.batch, progress=False), args.iterations
    )
    fresh = FreshESD(pipe, PROMPTS, steps=args.fresh_steps, guidance=3.0, batch=1)
    rows["esd-x iteration, fresh draw (batch 1)"] = timed(
        dev, lambda n: finetune(pipe, fresh, "esd-x", iterations=n, batch=1, progress=False), args.iterations
    )
    rows["p-esd iteration, fresh draw (batch 1)"] = timed(
        dev, lambda n: learn_masks(pipe, fresh, "ffn2", k=2.0, iterations=n, batch=1, progress=False), args.iterations
    )
    word, tid = placeholder(pipe, PROMPTS)
    for name, discrete in (("unlearndiff", True), ("softprompt", False)):
        rows[f"{name} step"] = timed(dev, lambda n, d=discrete: gradient_attack(pipe, ex, PROMPTS, word, tid, k=3, discrete=d,
                                                                               iterations=n, batch=args.batch), args.iterations)  # fmt: skip
    where = (
        torch.cuda.get_device_name(0)
        if dev.startswith("cuda")
        else f"{platform.processor() or platform.machine()}, {args.threads} threads"
    )
    if args.markdown:
        print(f"| what ({where}, {args.size}x{args.size}, batch {args.batch}) | seconds | peak memory (MB) |")
        print("| --- | --- | --- |")
        for k, r in rows.items():
            secs = r.get("s_per_iteration", r.get("s_total"))
            print(f"| {k} | {secs:.2f} | {r['peak_mb']:.0f} |")
    else:
        print(json.dumps({"device": where, "size": args.size, "batch": args.batch, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
