"""FLUX.1-size and SD3.5-large-size rows: one denoiser step plain and recorded (the default MLP sites,
sumsq + sumsq_unit), one ESD-x iteration (forward, backward, Adam on the text-stream attention) and
one prompt-attack step (the gradient through the transformer to the text conditioning), with peak
GPU memory. Random weights in bf16 cost what real ones do. The text encoders are left out (the
conditioning is given as tensors of T5-XXL's shape): their cost is one forward per prompt.

    python benchmarks/dit_sizes.py --device cuda --markdown     # the GPU rows (benchmarks/gpu.sh)
    python benchmarks/dit_sizes.py --scale tiny                 # the same code on tiny configs (CPU)
"""

from __future__ import annotations

import argparse
import time

import torch

#: (transformer config, image side, T5 length)
SIZES = {
    "flux": ({"num_layers": 19, "num_single_layers": 38, "attention_head_dim": 128, "num_attention_heads": 24,
              "joint_attention_dim": 4096, "pooled_projection_dim": 768, "guidance_embeds": True}, 1024, 512),
    "sd35": ({"sample_size": 128, "patch_size": 2, "in_channels": 16, "num_layers": 38, "attention_head_dim": 64,
              "num_attention_heads": 38, "joint_attention_dim": 4096, "caption_projection_dim": 2432,
              "pooled_projection_dim": 2048, "out_channels": 16, "pos_embed_max_size": 192, "qk_norm": "rms_norm"}, 1024, 256),
}  # fmt: skip
TINY = {"flux": ({"num_layers": 2, "num_single_layers": 2, "attention_head_dim": 8, "num_attention_heads": 2,
                  "joint_attention_dim": 32, "pooled_projection_dim": 32, "guidance_embeds": True, "axes_dims_rope": (2, 2, 4)}, 64, 32),
        "sd35": ({"sample_size": 8, "patch_size": 2, "in_channels": 16, "num_layers": 2, "attention_head_dim": 8,
                  "num_attention_heads": 2, "joint_attention_dim": 32, "caption_projection_dim": 16, "pooled_projection_dim": 32,
                  "out_channels": 16, "pos_embed_max_size": 16}, 64, 32)}  # fmt: skip


def pipeline(kind: str, scale: str, device: str, dtype: torch.dtype):
    """A pipeline whose transformer has the full (or tiny) size and random weights; tiny text
    encoders (never called: the conditioning is given) and a factor-8 VAE with 16 latent channels."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    from workbench.models.tiny_transformers import tiny_flux, tiny_sd3, tiny_vae

    config, side, text = (SIZES if scale == "full" else TINY)[kind]
    with torch.device(device):
        vae = tiny_vae(16, shift_factor=0.0, scaling_factor=1.0)
        vae = type(vae)(**{**vae.config, "block_out_channels": (16,) * 4, "down_block_types": ("DownEncoderBlock2D",) * 4,
                            "up_block_types": ("UpDecoderBlock2D",) * 4})  # fmt: skip
        small = tiny_flux() if kind == "flux" else tiny_sd3()
        before = torch.get_default_dtype()
        torch.set_default_dtype(dtype)  # made in bf16 at once: FLUX.1 in float32 would need 48 GB first
        try:
            model = (FluxTransformer2DModel if kind == "flux" else SD3Transformer2DModel)(**config)
        finally:
            torch.set_default_dtype(before)
    parts = {k: v for k, v in small.components.items() if k not in ("transformer", "vae", "scheduler")}
    cls = FluxPipeline if kind == "flux" else StableDiffusion3Pipeline
    pipe = cls(transformer=model, vae=vae.to(device, dtype), scheduler=FlowMatchEulerDiscreteScheduler(), **parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe, side, text


def conditioning(pipe, kind: str, text: int, device: str, dtype, batch: int = 1) -> dict:
    t = pipe.transformer.config
    ctx = torch.randn(batch, text, t.joint_attention_dim, device=device, dtype=dtype)
    pooled = torch.randn(batch, t.pooled_projection_dim, device=device, dtype=dtype)
    out = {"prompt_embeds": ctx, "pooled_prompt_embeds": pooled}
    if kind == "sd35":
        out.update(negative_prompt_embeds=ctx.clone(), negative_pooled_prompt_embeds=pooled.clone())
    return out


def timed(fn, device: str, repeats: int = 2) -> tuple[float, float]:
    """(seconds of the fastest of ``repeats`` calls after a warm-up, peak GiB)."""
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
    return best, peak


def rows(kind: str, scale: str, device: str, steps: int = 2) -> list[tuple[str, float, float]]:
    from workbench.editing.examples import Examples, call_examples
    from workbench.editing.learning import group_params
    from workbench.editing.training import prediction_loss, trainable
    from workbench.models.denoise import capture
    from workbench.models.families import denoiser_of
    from workbench.models.hooks import Hook, StopForward, hooks
    from workbench.models.slots import Conditioning
    from workbench.recording.hooks import Recorder

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    pipe, side, text = pipeline(kind, scale, device, dtype)
    cond = conditioning(pipe, kind, text, device, dtype)
    guidance = 3.5 if kind == "flux" else 4.5

    def generate():
        with torch.no_grad():
            pipe(**cond, num_inference_steps=steps, guidance_scale=guidance, height=side, width=side, output_type="latent",
                 max_sequence_length=text, generator=torch.Generator().manual_seed(0))  # fmt: skip

    def recorded():
        with Recorder(pipe, None) as rec:
            generate()
        rec.result(1, kind != "flux")

    out = [(f"{kind} {side}px: one denoising step", *timed(generate, device))]
    out[0] = (out[0][0], out[0][1] / steps, out[0][2])
    r = timed(recorded, device)
    out.append((f"{kind} {side}px: one step recorded (default sites, sumsq + sumsq_unit)", r[0] / steps, r[1]))
    got = []

    def keep(m, a, k, o):
        got.append(capture(pipe, a, k, o))
        raise StopForward

    with hooks(Hook(denoiser_of(pipe), keep, with_kwargs=True), stop=True):
        generate()
    call = got[0]
    n = call.sample.shape[0] if kind == "flux" else call.sample.shape[0] // 2
    call.prediction = call.prediction.float()
    ex = call_examples(pipe, call, n, 1.0) if kind != "flux" else None
    if ex is None:  # FLUX: the empty prompt's prediction needs the text encoders; the target's cost is one more forward
        ex = Examples(
            call.sample, call.timestep.expand(n), call.context, call.prediction, call.prediction, call.added, call.shared
        )
    params = group_params(pipe, "esd-x")
    for p in params.values():
        p.data = p.data.float()
    opt = torch.optim.Adam(list(params.values()), lr=1e-5)
    idx = torch.arange(len(ex))

    def esd_step():
        with trainable(pipe, params, "bf16" if device.startswith("cuda") else "fp32", True):
            loss = prediction_loss(pipe, ex, idx)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

    out.append((f"{kind}: one ESD-x iteration (bf16 autocast, checkpointing; {sum(p.numel() for p in params.values()) / 1e9:.2f} B params in Adam)",
                *timed(esd_step, device)))  # fmt: skip
    soft = ex.cond.detach().clone().float().requires_grad_(True)

    def attack_step():
        with trainable(pipe, {}, "bf16" if device.startswith("cuda") else "fp32", True):
            loss = prediction_loss(pipe, ex, idx, target="frozen", cond=Conditioning(soft.to(dtype)))
            loss.backward()
        soft.grad = None

    out.append((f"{kind}: one prompt-attack step (gradient through the transformer to T5's states)", *timed(attack_step, device)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--scale", choices=["full", "tiny"], default="full")
    ap.add_argument("--models", default="flux,sd35")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    print("| row | seconds | peak GiB |\n| --- | --- | --- |" if args.markdown else "row, seconds, peak GiB")
    for kind in args.models.split(","):
        for name, sec, peak in rows(kind, args.scale, args.device):
            print(f"| {name} | {sec:.3f} | {peak:.1f} |" if args.markdown else f"{name}, {sec:.3f}, {peak:.1f}", flush=True)
        torch.cuda.empty_cache() if args.device.startswith("cuda") else None


if __name__ == "__main__":
    main()
