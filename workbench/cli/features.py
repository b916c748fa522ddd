"""Features beside neurons: `samples` (token samples into a store), `sae` (an SAE trained on
them, SAELens's format) and `features` (a concept's features against its neurons, from the store)."""

from __future__ import annotations

from pathlib import Path

from .common import Parents


def cmd_samples(args) -> int:
    from ..recording.samples import SampleOptions, record_samples
    from ..store.samples import open_samples
    from .common import load

    steps = [int(x) for x in args.calls.split(",")] if args.calls else None
    options = SampleOptions(sites=args.sites.split(","), steps=steps, tokens=args.tokens, seed=args.seed,
                            max_bytes=args.max_bytes, batch_size=args.batch_size)  # fmt: skip
    pipe = load(args)
    path = record_samples(pipe, args.store, options, progress=not args.quiet)
    s = open_samples(args.store)
    print(f"{path}: {s.sizes['sample_prompt']} prompts, {len(s.attrs['sites'])} sites, calls {s.attrs['steps']}, "
          f"{s.attrs['bytes_per_prompt'] / 1e6:.2f} MB a prompt")  # fmt: skip
    return 0


def cmd_sae(args) -> int:
    from ..recording.sae import SAEOptions, StoreSource, train_sae

    steps = tuple(int(x) for x in args.calls.split(",")) if args.calls else None
    options = SAEOptions(k=args.k, expansion=args.expansion, architecture=args.architecture, lr=args.lr, batch_size=args.batch_size,
                         epochs=args.epochs, buffer=args.buffer, seed=args.seed, steps=steps, device=args.device)  # fmt: skip
    out = args.out or Path(args.store) / "saes" / args.site
    sae = train_sae(StoreSource(args.store, args.site, steps), out, options, progress=not args.quiet)
    m = sae.info["metrics"]
    print(f"{out}: {sae.architecture} SAE, {sae.d_in} -> {sae.d_sae} features; explained variance {m['explained_variance']:.3f}, "
          f"L0 {m['l0']:.1f}, dead features {m['dead_features']} of {sae.d_sae} (SAELens: SAE.load_from_disk('{out}'))")  # fmt: skip
    return 0


def add(sub, parents: Parents) -> None:
    """Declare this group's subcommands."""
    _add_samples(sub, parents)
    _add_sae(sub, parents)


def _add_samples(sub, parents: Parents) -> None:
    sp = sub.add_parser(
        "samples",
        parents=[parents.model, parents.quiet],
        help="keep per-token activations at chosen sites in a store (the data SAEs are trained on)",
        description="Generate the store's prompts again (its steps, guidance and image size) and keep, at the chosen sites "
        "and denoiser calls, a fixed number of the cond branch's tokens per prompt (float16) and the images, in the store's "
        "samples group. The bytes a prompt takes are printed before anything is written; --max-bytes refuses a run past it. "
        "Started again it resumes to the same bytes.",
    )
    sp.add_argument("store", help="a recording store (`workbench record`): its prompts are sampled, the samples kept inside it")
    sp.add_argument("--sites", default="block", help="site families or globs, comma-separated (default: block, the transformer "
                    "blocks' outputs; ffn2: the FFN neurons; `workbench sites` lists them)")  # fmt: skip
    sp.add_argument("--calls", default=None, help="denoiser calls to sample, comma-separated (default: every call)")
    sp.add_argument("--tokens", type=int, default=256, help="tokens a prompt keeps per site and call (0: all; default 256, "
                    "every token of the toy world's grids)")  # fmt: skip
    sp.add_argument("--max-bytes", type=float, default=None, help="refuse to start when the samples would take more (e.g. 2e9)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the token positions drawn")
    sp.add_argument("--batch-size", type=int, default=4)
    sp.set_defaults(func=cmd_samples)


def _add_sae(sub, parents: Parents) -> None:
    sa = sub.add_parser(
        "sae",
        parents=[parents.quiet],
        help="train a sparse autoencoder on a store's token samples of one site (SAELens's format)",
        description="Train a TopK (or BatchTopK) SAE on the token samples of one site (`workbench samples`), streamed a "
        "buffer of prompts at a time, and save it in SAELens's format (cfg.json, sae_weights.safetensors, "
        "sparsity.safetensors: SAE.load_from_disk reads it). Prints explained variance, L0 and dead features. A killed run "
        "resumes from its last checkpoint to the same weights.",
    )
    sa.add_argument("store", help="a store with token samples")
    sa.add_argument("--site", required=True, help="the sampled site (its module path)")
    sa.add_argument("--out", default=None, help="the SAE folder (default: STORE/saes/SITE)")
    sa.add_argument("--k", type=int, default=32, help="active features a token (SAeUron: 32)")
    sa.add_argument("--expansion", type=int, default=16, help="features per input dimension (SAeUron: 16)")
    sa.add_argument("--architecture", default="topk", choices=["topk", "batchtopk"])
    sa.add_argument("--lr", type=float, default=5e-4)
    sa.add_argument("--batch-size", type=int, default=4096, help="tokens a training batch")
    sa.add_argument("--epochs", type=int, default=1, help="passes over the samples")
    sa.add_argument("--buffer", type=int, default=64, help="prompts shuffled together (memory: their samples)")
    sa.add_argument("--calls", default=None, help="sampled calls to train on, comma-separated (default: all)")
    sa.add_argument("--seed", type=int, default=0)
    sa.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    sa.set_defaults(func=cmd_sae)
