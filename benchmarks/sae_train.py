"""SAE training at SD 1.5 size: tokens a second and peak memory of TopK / BatchTopK steps.

SAeUron's settings on SD 1.5's cross-attention block outputs: d_in 1280, 16x (20,480 features),
k = 32, batches of 4,096 tokens (random activations: the same compute as real ones). Runs the
training step of ``recording.sae`` (encode, top-k, decode, auxiliary loss, Adam, unit decoder).

    python benchmarks/sae_train.py [--device cuda] [--steps 20] [--markdown]
"""

import argparse
import time

import torch

from workbench.recording.sae import Autoencoder, SAEOptions, _step


def measure(arch: str, device: str, steps: int, d_in: int, expansion: int, batch: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    options = SAEOptions(
        k=32, expansion=expansion, architecture=arch, batch_size=batch, dead_after=batch
    )  # aux loss on from step 2
    model = Autoencoder(d_in, d_in * expansion, 32, arch == "batchtopk", gen).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    since = torch.zeros(d_in * expansion, dtype=torch.long, device=device)
    x = torch.randn(batch, d_in, generator=gen).to(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    _step(model, opt, since, x, options)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        _step(model, opt, since, x, options)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
    return {"arch": arch, "tokens_per_s": steps * batch / dt, "ms_per_step": 1000 * dt / steps, "peak_gib": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--d-in", type=int, default=1280)
    ap.add_argument("--expansion", type=int, default=16)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    rows = [measure(a, args.device, args.steps, args.d_in, args.expansion, args.batch) for a in ("topk", "batchtopk")]
    head = f"d_in {args.d_in}, {args.d_in * args.expansion} features, k 32, batch {args.batch} tokens, {args.device}"
    print(f"| SAE step ({head}) | tokens/s | ms a step | peak GiB |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['arch']} | {r['tokens_per_s']:,.0f} | {r['ms_per_step']:.0f} | {r['peak_gib']:.2f} |")


if __name__ == "__main__":
    main()
