"""Train the toy world: the SD-architecture diffusion model and its oracle.

    python -m workbench.models.toyworld.train --out runs/toy --minutes 8 --device cuda
    python -m workbench.models.toyworld.train --language --out runs/toy-lang --minutes 120 --export DIR

``--language`` fine-tunes the shipped world (or ``--init``) into the language world (issue 24):
the tokenizer and text encoder extended by every route's words, captions drawn with a random
route for the texture and the shape (the original phrase half of the time, so the original
captions keep working), the UNet and text encoder trained on them together.

Seeded; checkpoints every ``--save-every`` steps into ``--out/checkpoint`` and resumes from
there when started again; ``--export`` writes the shipped folder (fp16 weights) at the end.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import oracle as oracle_mod
from .draw import draw, sample_specs
from .grammar import COLOURS, NO_OBJECT, SCENES, SHAPES, TEXTURES, Spec
from .model import build_language, build_untrained

P_UNCOND = 0.1
P_NONE = 0.06
P_COLOUR = 0.85
P_SCENE = 0.7
#: the language world: the share of captions naming a texture or shape by its original phrase
P_ORIGINAL = 0.5


def caption_table(tokenizer, device) -> torch.Tensor:
    """Token ids of every caption, indexed [shape(+none), colour(+unnamed), texture, scene(+unnamed)];
    the last row of shape with unnamed scene is the empty (unconditional) caption."""
    ns, nc, nt, nsc = len(SHAPES) + 1, len(COLOURS) + 1, len(TEXTURES), len(SCENES) + 1
    captions = []
    for s, c, t, sc in itertools.product(range(ns), range(nc), range(nt), range(nsc)):
        spec = Spec(
            SHAPES[s] if s < len(SHAPES) else NO_OBJECT,
            COLOURS[c % len(COLOURS)],
            TEXTURES[t],
            SCENES[sc % len(SCENES)],
        )
        captions.append(
            "" if (s == len(SHAPES) and sc == len(SCENES)) else spec.caption(colour=c < len(COLOURS), scene=sc < len(SCENES))
        )
    ids = tokenizer(
        captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
    return ids.view(ns, nc, nt, nsc, -1).to(device)


def _choices(n: int, g: torch.Generator, device, extra: int = 0) -> tuple:
    """A fresh random batch's images and caption choices: (images, the drawn specs' indices, shape,
    colour, scene indices as captioned (unnamed and unconditional ones at the end of their tables),
    the ``extra`` further uniform draws per image that a caller needs)."""
    ix = sample_specs(n, g, p_none=P_NONE, device=device)
    imgs = draw(**ix, generator=g)
    u = torch.rand(n, 3 + extra, generator=g, device=device)
    colour = torch.where(u[:, 0] < P_COLOUR, ix["colour"], len(COLOURS))
    scene = torch.where(u[:, 1] < P_SCENE, ix["scene"], len(SCENES))
    shape = ix["shape"].clone()
    none = shape == len(SHAPES)
    scene = torch.where(none & (u[:, 1] >= 0.5), ix["scene"], scene)  # scenes alone are usually named
    uncond = u[:, 2] < P_UNCOND
    shape = torch.where(uncond, len(SHAPES), shape)
    scene = torch.where(uncond, len(SCENES), scene)
    return imgs, ix, shape, colour, scene, u[:, 3:]


def batch(n: int, table: torch.Tensor, g: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] and caption ids for a fresh random batch."""
    imgs, ix, shape, colour, scene, _ = _choices(n, g, device)
    return imgs, table[shape, colour, ix["texture"], scene]


def language_table(tokenizer, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The language world's captions as token ids, indexed [shape(+none), shape route, colour(+unnamed),
    texture, texture route, scene(+unnamed)] (a route slot a value lacks repeats its original), with
    the number of routes of each shape and texture."""
    from .language import caption, routes

    shape_routes = [routes(s) for s in SHAPES]
    tex_routes = [routes(t) if t != "plain" else [None] for t in TEXTURES]
    rs, rt = max(map(len, shape_routes)), max(map(len, tex_routes))
    ns, nc, nt, nsc = len(SHAPES) + 1, len(COLOURS) + 1, len(TEXTURES), len(SCENES) + 1
    captions = []
    for s, i, c, t, j, sc in itertools.product(range(ns), range(rs), range(nc), range(nt), range(rt), range(nsc)):
        if s == len(SHAPES):
            captions.append("" if sc == len(SCENES) else SCENES[sc])
            continue
        spec = Spec(SHAPES[s], COLOURS[c % len(COLOURS)], TEXTURES[t], SCENES[sc % len(SCENES)])
        sr, tr = shape_routes[s], tex_routes[t]
        captions.append(caption(spec, tr[j] if j < len(tr) else tr[0], sr[i] if i < len(sr) else sr[0],
                                colour=c < len(COLOURS), scene=sc < len(SCENES)))  # fmt: skip
    ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids  # fmt: skip
    counts = (torch.tensor([len(r) for r in shape_routes]), torch.tensor([len(r) for r in tex_routes]))
    return ids.view(ns, rs, nc, nt, rt, nsc, -1).to(device), counts[0].to(device), counts[1].to(device)


def language_batch(n: int, tables, g: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    """A fresh random batch for the language world: ``batch``'s images and attribute choices, each
    named shape and texture by its original phrase with probability ``P_ORIGINAL``, else by one of
    its routes at random."""
    table, shape_counts, tex_counts = tables
    imgs, ix, shape, colour, scene, u = _choices(n, g, device, extra=2)
    sc = shape_counts[shape.clamp(max=len(SHAPES) - 1)]
    r_shape = torch.where(u[:, 0] < P_ORIGINAL, 0, (torch.rand(n, generator=g, device=device) * sc).long())
    tc = tex_counts[ix["texture"]]
    r_tex = torch.where(u[:, 1] < P_ORIGINAL, 0, (torch.rand(n, generator=g, device=device) * tc).long())
    return imgs, table[shape, r_shape, colour, ix["texture"], r_tex, scene]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="run folder (checkpoint/ and export/ go here)")
    ap.add_argument("--steps", type=int, default=200_000, help="stop after this many optimiser steps")
    ap.add_argument("--minutes", type=float, default=60.0, help="stop after this much wall time")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--text-lr-scale", type=float, default=3.0, help="the text encoder learns this much faster")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-every", type=int, default=2000)
    ap.add_argument("--oracle-steps", type=int, default=4000, help="0 skips training the oracle")
    ap.add_argument("--init", type=Path, default=None, help="start from the weights of an exported model folder")
    ap.add_argument("--export", type=Path, default=None, help="write the shippable model folder here")
    ap.add_argument("--language", action="store_true", help="fine-tune into the language world (--init: the shipped one)")
    ap.add_argument("--text-only", action="store_true",
                    help="train the text encoder alone: the UNet (and so every FFN neuron) stays the shipped one")  # fmt: skip
    args = ap.parse_args(argv)
    from tqdm.auto import tqdm

    dev = args.device
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.language:
        from . import WEIGHTS, load

        pipe = build_language(load(args.init or WEIGHTS), args.out / "build", seed=args.seed)
    else:
        pipe = build_untrained(args.out / "build", seed=args.seed)
    if args.init is not None and not args.language:
        from . import load

        init = load(args.init)
        pipe.unet.load_state_dict(init.unet.state_dict())
        pipe.text_encoder.load_state_dict(init.text_encoder.state_dict())
    unet, text = pipe.unet.to(dev), pipe.text_encoder.to(dev)
    unet.requires_grad_(not args.text_only)
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    ema_text = copy.deepcopy(text).eval().requires_grad_(False)
    groups = [{"params": list(text.parameters()), "lr_scale": args.text_lr_scale}]
    if not args.text_only:
        groups.insert(0, {"params": list(unet.parameters())})
    params = [p for g_ in groups for p in g_["params"]]
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.01)
    g = torch.Generator(dev).manual_seed(args.seed)
    step = 0
    ckpt = args.out / "checkpoint" / "state.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location=dev, weights_only=False)
        unet.load_state_dict(state["unet"])
        text.load_state_dict(state["text"])
        ema.load_state_dict(state["ema"])
        ema_text.load_state_dict(state["ema_text"])
        opt.load_state_dict(state["opt"])
        g.set_state(state["rng"].cpu())
        step = state["step"]
        print(f"resumed at step {step}")

    def save_checkpoint():
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        tmp = ckpt.with_suffix(".tmp")
        torch.save(
            dict(
                unet=unet.state_dict(),
                text=text.state_dict(),
                ema=ema.state_dict(),
                ema_text=ema_text.state_dict(),
                opt=opt.state_dict(),
                rng=g.get_state(),
                step=step,
            ),
            tmp,
        )
        tmp.replace(ckpt)

    ema_params = ([] if args.text_only else list(ema.parameters())) + list(ema_text.parameters())
    live_params = params  # the optimiser's, in the same order (UNet first unless --text-only)
    table = language_table(pipe.tokenizer, dev) if args.language else caption_table(pipe.tokenizer, dev)
    draw_batch = language_batch if args.language else batch
    sched = pipe.scheduler
    acp = sched.alphas_cumprod.to(dev)
    start = time.time()
    bar = tqdm(total=args.steps, initial=step, desc="diffusion")
    unet.train()
    text.train()
    while step < args.steps and time.time() - start < args.minutes * 60:
        imgs, ids = draw_batch(args.batch, table, g, dev)
        x0 = pipe.to_latents(imgs)
        noise = torch.randn(x0.shape, generator=g, device=dev)
        t = torch.randint(0, sched.config.num_train_timesteps, (args.batch,), generator=g, device=dev)
        a = acp[t].sqrt()[:, None, None, None]
        s = (1 - acp[t]).sqrt()[:, None, None, None]
        xt = a * x0 + s * noise
        v = a * noise - s * x0
        lr = args.lr * min(1.0, (step + 1) / 500)
        for group in opt.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        with torch.autocast(dev.split(":")[0], dtype=torch.bfloat16, enabled=dev.startswith("cuda")):
            pred = unet(xt, t, encoder_hidden_states=text(ids)[0]).sample
        loss = F.mse_loss(pred.float(), v)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            d = min(args.ema, (1 + step) / (10 + step))
            torch._foreach_lerp_(ema_params, live_params, 1 - d)
        step += 1
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.update(1)
        if step % args.save_every == 0:
            save_checkpoint()
    bar.close()
    save_checkpoint()
    minutes = (time.time() - start) / 60
    print(f"stopped at step {step} after {minutes:.1f} min this run")
    if args.export:
        export = args.export
        pipe.unet, pipe.text_encoder = ema.to(torch.float16), ema_text
        pipe.save_pretrained(export)
        if args.language:  # the images are the original world's: its oracle judges them
            import shutil

            from . import WEIGHTS

            shutil.copy(WEIGHTS / "oracle.safetensors", export / "oracle.safetensors")
        elif args.oracle_steps:
            orc = oracle_mod.train(steps=args.oracle_steps, device=dev)
            oracle_mod.save(orc, export / "oracle.safetensors")
            acc = oracle_mod.accuracy(orc, device=dev)
            print("oracle held-out accuracy", acc)
        from . import load, load_oracle
        from .gate import quality_gate

        pipe2 = load(export, device=dev)
        gate = quality_gate(pipe2, load_oracle(export / "oracle.safetensors", dev), n=512, batch=256)
        print("quality gate", gate)
        routes = None
        if args.language:
            from .gate import route_gate

            routes = route_gate(pipe2, load_oracle(export / "oracle.safetensors", dev), per_route=64, batch=64)
            print("route gate (held-out routes)", routes)
        info = dict(
            gate=gate,
            **({"route_gate": routes, "language": True} if routes is not None else {}),
            steps=step,
            batch=args.batch,
            lr=args.lr,
            ema=args.ema,
            seed=args.seed,
            text_only=args.text_only,
            device=str(torch.cuda.get_device_name() if dev.startswith("cuda") else "cpu"),
            minutes_last_run=round(minutes, 2),
        )
        (export / "training.json").write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
