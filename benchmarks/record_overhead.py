"""Recording overhead: workbench.record() versus plain generation, same prompts, steps and seeds,
alternated in one run; plus peak host memory while recording and store bytes per prompt.

    python benchmarks/record_overhead.py --mode toy            # toy world, CPU
    python benchmarks/record_overhead.py --mode sd15-cpu --size 256   # full-size SD1.5 UNet, 2 steps, CPU
    python benchmarks/record_overhead.py --mode sd15-gpu       # fp16, batch 8, 50 steps, CUDA
    python benchmarks/record_overhead.py --mode store-size     # bytes/prompt at SD1.5 dims, 51 calls

The SD1.5 UNet has random weights (the same compute as the real one); the text encoder is small.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from workbench.models import load_pipeline, sd15_random
from workbench.prompts import Prompt, PromptSet
from workbench.recording import record
from workbench.recording.hooks import run_pipe


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(dev):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def overhead(pipe, n: int, steps: int, guidance: float, size, batch: int, repeats: int, dev: str) -> dict:
    prompts = PromptSet([Prompt(f"a red circle {i}", "bench", i) for i in range(n)])
    tmp = Path(tempfile.mkdtemp())
    plain, rec = [], []
    mem0 = rss_mb()

    def run_plain():
        for lo in range(0, n, batch):
            ps = prompts.prompts[lo : lo + batch]
            run_pipe(pipe, [p.text for p in ps], [p.seed for p in ps], steps, guidance, size)

    with torch.inference_mode():
        run_plain()  # warm-up
    # the first record() of a process hashes the weights once (cached after): time it apart
    t = time.perf_counter()
    record(
        pipe,
        PromptSet(prompts.prompts[:1]),
        tmp / "warm.zarr",
        steps=steps,
        guidance=guidance,
        batch_size=batch,
        size=size,
        progress=False,
    )
    first_record_s = time.perf_counter() - t
    for r in range(repeats):
        sync(dev)
        t = time.perf_counter()
        with torch.inference_mode():
            run_plain()
        sync(dev)
        plain.append(time.perf_counter() - t)
        out = tmp / f"r{r}.zarr"
        t = time.perf_counter()
        record(pipe, prompts, out, steps=steps, guidance=guidance, batch_size=batch, size=size, progress=False)
        sync(dev)
        rec.append(time.perf_counter() - t)
    bytes_per_prompt = du(tmp / "r0.zarr") / n
    shutil.rmtree(tmp)
    return {
        "plain_s": statistics.median(plain),
        "record_s": statistics.median(rec),
        "ratio": statistics.median(rec) / statistics.median(plain),
        "ratios": [round(b / a, 3) for a, b in zip(plain, rec)],
        "peak_rss_over_model_mb": rss_mb() - mem0,
        "store_bytes_per_prompt": bytes_per_prompt,
        "first_record_s": first_record_s,
    }


def store_size() -> dict:
    """Bytes per prompt on disk for SD1.5's 16 FFN-2 sites, 51 calls, 2 branches, 2 stats, with
    positive float32 values drawn like real sums of squares (incompressible mantissas)."""
    from workbench.models.sites import Site
    from workbench.recording import Recording
    from workbench.store import StoreWriter

    widths = [1280] * 5 + [2560] * 5 + [5120] * 6
    sites = [Site(f"s{i}.ff.net.2", "ffn2", "unet", f"s{i}.ff.net.2", w) for i, w in enumerate(widths)]
    tmp = Path(tempfile.mkdtemp())
    n, chunk = 8, 8
    w = StoreWriter.open(tmp / "s.zarr", {"model_id": "synthetic"}, sites, ("sumsq", "sumsq_unit"), chunk=chunk)
    idx = w.add_prompts(PromptSet([Prompt(f"p{i}", "x", i) for i in range(n)]))
    rng = np.random.default_rng(0)
    stats = {
        s.name: {k: rng.gamma(2.0, 50.0, (n, 2, 51, s.width)).astype(np.float32) for k in ("sumsq", "sumsq_unit")} for s in sites
    }
    w.write(idx, Recording(stats, list(range(51)), {}, ("uncond", "cond")))
    w.finish()
    raw = sum(widths) * 51 * 2 * 2 * 4
    size = du(tmp / "s.zarr") / n
    shutil.rmtree(tmp)
    return {"neurons": sum(widths), "raw_bytes_per_prompt": raw, "store_bytes_per_prompt": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["toy", "sd15-cpu", "sd15-gpu", "store-size"], default="toy")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--size", type=int, default=None, help="image size for the sd15 modes (default 512; 256 keeps a CPU run to minutes)"
    )
    args = ap.parse_args()
    if args.mode == "store-size":
        r = store_size()
        print(
            f"store-size: {r['neurons']} neurons, raw {r['raw_bytes_per_prompt'] / 1e6:.1f} MB/prompt, on disk {r['store_bytes_per_prompt'] / 1e6:.1f} MB/prompt"
        )
        return
    if args.mode == "toy":
        torch.set_num_threads(2)
        pipe, dev = load_pipeline("toy"), "cpu"
        r = overhead(pipe, n=16, steps=25, guidance=1.5, size=None, batch=8, repeats=args.repeats, dev=dev)
    elif args.mode == "sd15-cpu":
        torch.set_num_threads(2)
        pipe, dev = sd15_random(), "cpu"
        r = overhead(pipe, n=1, steps=2, guidance=7.5, size=args.size or 512, batch=1, repeats=args.repeats, dev=dev)
    else:
        dev = "cuda"
        pipe = sd15_random(dtype=torch.float16).to(dev)
        r = overhead(pipe, n=8, steps=50, guidance=7.5, size=args.size or 512, batch=8, repeats=args.repeats, dev=dev)
    print(f"{args.mode}: plain {r['plain_s']:.2f} s, record {r['record_s']:.2f} s, ratio {r['ratio']:.3f} (each repeat: {r['ratios']}); "
          f"peak RSS growth while recording {r['peak_rss_over_model_mb']:.0f} MB; store {r['store_bytes_per_prompt'] / 1e6:.2f} MB/prompt; "
          f"first record() of the process (weights hashed) {r['first_record_s']:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
