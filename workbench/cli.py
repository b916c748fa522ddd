"""The `workbench` command: record activations, list sites and prompt sets, compute masks, run the demo."""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sys
from pathlib import Path

DESCRIPTION = """Mechanistic-interpretability workbench for text-to-image diffusion models (ConceptPrune).

Typical use:
  workbench record --model toy --prompts texture:striped --out stores/striped.zarr
  workbench sites --model toy
  workbench sets
"""


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="toy",
        help="'toy' (the embedded toy world, default), a folder saved with save_pretrained, or a cached hub id",
    )
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float16", "bfloat16"],
        help="weights dtype (float16 on GPU for real SD)",
    )
    p.add_argument(
        "--allow-download", action="store_true", help="let diffusers fetch weights from a hub (off: no downloads at run time)"
    )


def _load(args):
    import torch

    from .models import load_pipeline

    if getattr(args, "quiet", False):  # diffusers' and transformers' loading bars too
        import diffusers
        import transformers

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()

    # under torchrun / accelerate each process takes its own GPU (LOCAL_RANK)
    device = args.device or (f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu")
    return load_pipeline(args.model, device=device, dtype=getattr(torch, args.dtype), allow_download=args.allow_download)


def cmd_record(args) -> int:
    from .prompts import PromptSet, get
    from .recording import finalise, record, shard_from_env

    if args.finalise is not None:
        print(finalise(args.finalise))
        return 0
    if not args.prompts:
        raise ValueError("give --prompts SET ... to record (or --finalise STORE to complete a sharded store)")
    shard = args.shard if args.shard is not None else shard_from_env()
    prompts = PromptSet()
    for name in args.prompts:
        prompts = prompts + get(name, seed=args.seed)
    pipe = _load(args)
    sites = args.sites.split(",")
    out = record(pipe, prompts, args.out, sites=sites, steps=args.steps, guidance=args.guidance, batch_size=args.batch_size,
                 stats=args.stats.split(","), size=args.size, progress=not args.quiet, shard=shard)  # fmt: skip
    print(out)
    return 0


def cmd_sites(args) -> int:
    from .models import FAMILIES, catalogue, select

    pipe = _load(args)
    chosen = select(pipe, args.sites.split(",")) if args.sites else catalogue(pipe)
    for s in chosen:
        print(f"{s.family:11s} {s.width:6d}  {s.name}")
    print(f"# {len(chosen)} sites; families: {', '.join(FAMILIES)}", file=sys.stderr)
    return 0


def cmd_sets(args) -> int:
    from .prompts import get, named_sets

    if args.name:
        for p in get(args.name, seed=args.seed):
            print(f"{p.set}\t{p.seed}\t{p.text}")
        return 0
    for name, what in named_sets().items():
        print(f"{name:28s} {what}")
    return 0


def cmd_info(args) -> int:
    from .store import StoreError, check_store, describe, open_store
    from .store.reader import missing_chunks

    if args.check:
        check_store(args.store)
        print("check: every chunk of every recorded prompt is there and decodes", file=sys.stderr)
    tree = open_store(args.store, allow_partial=True)
    print(describe(tree))
    if not args.check:  # the cheap part of the check: a listing of which chunks exist
        lost = missing_chunks(args.store)
        if lost:
            raise StoreError(f"{args.store} is damaged: {len(lost)} chunk(s) of recorded prompts are missing (first: {lost[0]}); "
                             f"run `workbench info --check {args.store}` for the list and what to do")  # fmt: skip
    if tree.attrs.get("complete") and "reductions" not in tree.children:
        print(f"no current per-set reductions: `workbench reduce {args.store}` lets masks read MBs, not the whole store",
              file=sys.stderr)  # fmt: skip
    return 0


def cmd_reduce(args) -> int:
    from .store import WriterLock, consolidate, reduce_store

    with WriterLock(args.store, role="reduce"):
        reduce_store(str(args.store), progress=not args.quiet)
        consolidate(args.store)  # the consolidated listing names the new arrays
    print(f"{args.store}: per-set reductions written; masks, sweeps and overlaps now read those", file=sys.stderr)
    return 0


def cmd_push(args) -> int:
    from .store import push

    push(args.store, args.url, progress=not args.quiet)
    print(f"{args.store} -> {args.url}", file=sys.stderr)
    return 0


def cmd_masks(args) -> int:
    from .analysis import concept_masks, density, parse_window, save_masks
    from .models import check_weights, load_pipeline, weights_of
    from .store import open_store

    tree = open_store(args.store)
    model = tree.attrs["provenance"]["model_id"] if args.model is None else args.model
    pipe = load_pipeline(model, device="cpu")
    t_hat, window = parse_window(f"first:{args.t_hat}" if args.window == "first" else args.window)
    weights = weights_of(pipe, tree, allow_other_weights=args.allow_other_weights)
    masks = concept_masks(tree, weights, args.target, args.reference, k=args.k, t_hat=t_hat, window=window,
                          kind=args.kind, normalisation=args.normalisation)  # fmt: skip
    masks.attrs["store"] = str(args.store)
    masks.attrs["weights_model"] = model
    masks.attrs["weights_match_store"] = check_weights(pipe, tree.attrs["provenance"], allow_other_weights=True)
    when = f"t{args.t_hat}" if args.window == "first" else args.window.replace(":", "")
    out = args.out or Path(str(args.store).removesuffix(".zarr") + f"-{args.target}-k{args.k:g}-{when}.safetensors")
    save_masks(masks, out)
    d = density(masks, total_params=sum(p.numel() for p in pipe.unet.parameters()))
    for site, frac in zip(d["site"].values, d["density"].values):
        print(f"{frac:8.4%}  {site}")
    print(f"{float(d['overall']):8.4%}  of the masked sites' weights; {float(d['of_model']):.4%} of all UNet parameters")
    print(out)
    return 0


def cmd_demo(args) -> int:
    from .reports.demo import run_demo

    summary = run_demo(args.concept, k=args.k, t_hat=args.t_hat, out=args.out, steps=args.steps, n_per=args.n_per,
                       control=not args.no_control, progress=not args.json)  # fmt: skip
    if args.json:
        print(json.dumps(summary))
    else:
        b, a = summary["before"], summary["after"]
        print(f"'{summary['concept']}' on target prompts: {b['concept_rate']:.1%} -> {a['concept_rate']:.1%}; "
              f"degraded images {b['degraded_rate']:.1%} -> {a['degraded_rate']:.1%}; pruned {summary['density']:.3%} of FFN-2 weights")  # fmt: skip
        print(f"report: {summary['report']}")
    return 0


def cmd_erase(args) -> int:
    from .evaluation.erasers import erase_and_judge, make_edit
    from .models import load_pipeline
    from .models.toyworld import load_oracle

    pipe = load_pipeline("toy")
    out = Path(args.out)
    edit = make_edit(pipe, args.method, args.concept, k=args.k, t_hat=args.t_hat, iterations=args.iterations, lr=args.lr,
                     group=args.group, relaxation=args.relaxation, init=args.init, eta=args.eta, preserve=args.preserve, sites=args.sites,
                     tune=args.tune, tune_lr=args.tune_lr, seed=args.seed, workdir=out, progress=not (args.json or args.quiet))  # fmt: skip
    edit.save(out)
    summary = {**erase_and_judge(pipe, load_oracle(), edit, n_per=args.n_per), "edit": str(out)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if args.json:
        print(json.dumps(summary))
    else:
        b, a = summary["before"], summary["after"]
        worst = max(b["other_accuracy"][k] - a["other_accuracy"][k] for k in b["other_accuracy"])
        print(f"{args.method}: '{args.concept}' on target prompts {b['concept_rate']:.1%} -> {a['concept_rate']:.1%}; "
              f"worst drop of another attribute {worst:.1%}; degraded {a['degraded_rate']:.1%}; "
              f"{summary['seconds']} s to erase; edit in {out}")  # fmt: skip
    return 0


def cmd_attack(args) -> int:
    import json

    from .attacks import attack
    from .editing.edits import Edit, load_edit
    from .models import load_pipeline
    from .models.toyworld import load_oracle

    pipe, oracle = load_pipeline("toy"), load_oracle()
    out = args.out or Path("stores/attacks") / f"{args.attack}-{Path(args.edit).name}-{args.concept}-s{args.seed}"
    edit = Edit("unedited") if str(args.edit) == "none" else load_edit(args.edit)  # the reference: the model as it is
    result = attack(pipe, oracle, edit, args.concept, args.attack, budget=args.budget, seed=args.seed,
                    n_per=args.n_per, k=args.tokens, steps=args.steps, out=out, progress=not args.quiet)  # fmt: skip
    s = result.summary()
    if args.json:
        print(json.dumps({**s, "out": str(out)}, default=float))
    else:
        lo, hi = s["asr"]["ci95"]
        print(f"{args.attack} on {Path(args.edit).name}: '{args.concept}' shown on {s['asr']['k']}/{s['prompts']} attacked images "
              f"(ASR {s['asr']['rate']:.1%}, 95% CI {lo:.1%}-{hi:.1%}); {s['pre_attack']['k']} of them without attack; "
              f"{s.get('seconds')} s; prompts and embeddings in {out}")  # fmt: skip
    return 0


def cmd_reactivation(args) -> int:
    from .reports.reactivation import run_reactivation

    r = run_reactivation(args.edit, args.attack, args.concept, work=args.work, out=args.out, k=args.k, t_hat=args.t_hat,
                         steps=args.steps, progress=not args.quiet)  # fmt: skip
    s = r["summary"]
    print(f"mean sensitivity: concept neurons {float(s.sel(site='all', group='concept')):+.3f}, others "
          f"{float(s.sel(site='all', group='other')):+.3f}; {args.out}")  # fmt: skip
    return 0


def cmd_robustness(args) -> int:
    from .reports.robustness import run_robustness

    t = __import__("time").time()
    run_robustness(args.out, args.work, concept=args.concept, seeds=tuple(int(x) for x in args.seeds.split(",")),
                   n_per=args.n_per, quick=args.quick, progress=not args.quiet, core=args.core,
                   variants=args.variants, attacks=tuple(a for a in args.attacks.split(",") if a),
                   attack_budget=args.attack_budget)  # fmt: skip
    print(f"results: {args.out} ({round(__import__('time').time() - t)} s)")
    return 0


def cmd_ablate(args) -> int:
    from .evaluation.ablate import METRICS, Ablation, ablate
    from .models import load_pipeline
    from .models.toyworld import load_oracle
    from .store import open_store

    tree = open_store(args.store)
    if tree.attrs["provenance"]["model_id"] != "toy":
        raise ValueError("ablations are judged by the toy world's oracle: give a store recorded with --model toy")
    spec = Ablation(concepts=args.concepts.split(","), reference=args.reference, families=args.families.split(","),
                    ks=[float(k) for k in args.ks.split(",")], windows=args.windows.split(","), kinds=args.kinds.split(","),
                    steps=int(tree.attrs["provenance"]["steps"]), n_per=args.n_per)  # fmt: skip
    ds = ablate(load_pipeline("toy"), load_oracle(), tree, spec, args.out, progress=not args.quiet)
    print("unpruned baseline (what each cell is compared with):")
    for concept, b in ds.attrs["baseline"].items():
        others = ", ".join(f"{a} {v:.1%}" for a, v in b["other_accuracy"].items())
        print(
            f"  {concept}: concept rate {b['concept_rate']:.1%}; other prompts: {others}; kept on target {b['target_other']:.1%}; toy FID {b['fid']:.2f}"
        )
    print(ds[list(METRICS)].to_dataframe().to_string())
    print(args.out)
    return 0


def cmd_results(args) -> int:
    from .reports.results import run_results

    done = run_results(args.out, args.stores, steps=args.steps, n_per=args.n_per, quick=args.quick, progress=not args.quiet)
    print(f"results: {done['markdown']}\nfigures: {done['figures']}\n({done['seconds']} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="workbench", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "record",
        help="run the model over prompt sets and store per-site, per-step activation statistics",
        description="Generate images for prompt sets with hooks on the chosen sites, and write per prompt, "
        "CFG branch, UNet call and neuron the token-reduced statistics into a Zarr store. Started again "
        "with the same arguments it records only what is missing; new prompt sets extend the store.",
    )
    _add_model(r)
    r.add_argument(
        "--prompts",
        nargs="+",
        metavar="SET",
        help="named sets (see `workbench sets`) or text files, one prompt a line",
    )
    r.add_argument("--out", default=None, help="the store, a local folder (default: stores/<first set>.zarr)")
    r.add_argument(
        "--sites",
        default="ffn2",
        help="comma-separated families (ffn2, ffn1, attn2.to_k, attn2.to_v, text.fc2) or globs over module paths",
    )
    r.add_argument(
        "--steps",
        type=int,
        default=None,
        help="denoising steps (default: the model's own, 25 for the toy world, 50 for SD; the paper: 50)",
    )
    r.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="classifier-free guidance scale (default: the model's own, 1.5 for the toy world and its saved copies, 7.5 for SD; "
        "<= 1 records the cond branch only)",
    )
    r.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the first prompt pair: the i-th prompt of every set gets seed+i, so target and reference "
        "prompts pair up line by line (within one file of set<TAB>prompt lines, or across named sets)",
    )
    r.add_argument("--batch-size", type=int, default=8, help="prompts per pipeline call (also the store's prompt chunk)")
    r.add_argument("--stats", default="sumsq,sumsq_unit", help="comma-separated: sumsq, sumsq_unit, sum, absmax")
    r.add_argument("--size", type=int, default=None, help="image size in pixels (default: the model's)")
    r.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="record only shard I of N (prompt chunks c with c %% N == I) so N processes fill one store together; "
        "default: RANK/WORLD_SIZE when started by torchrun or accelerate launch. Every shard takes the same arguments; "
        "the last to finish marks the store complete, and a killed shard run again resumes",
    )
    r.add_argument(
        "--finalise",
        type=Path,
        default=None,
        metavar="STORE",
        help="check that every prompt of a sharded store is recorded and mark it complete (or say which shards to rerun)",
    )
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_record)

    s = sub.add_parser(
        "sites",
        help="list the hookable sites of a model",
        description="List hookable layers: family, width (neurons) and module path.",
    )
    _add_model(s)
    s.add_argument("--sites", default=None, help="only those a filter selects (families or globs, comma-separated)")
    s.set_defaults(func=cmd_sites)

    c = sub.add_parser(
        "sets",
        help="list named prompt sets, or print one",
        description="Named calibration sets: the paper's Table 9 and the toy world's.",
    )
    c.add_argument("name", nargs="?", help="print this set's prompts (set, seed, text)")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=cmd_sets)

    m = sub.add_parser(
        "masks",
        help="compute skilled/unskilled neuron masks from a store",
        description="ConceptPrune masks: top-k% of each row of the target's Wanda scores, kept where the target "
        "scores above (skilled) or below (unskilled) the reference, OR-ed over the first t-hat UNet calls. "
        "Needs the weights of the model the store was recorded with (read from its provenance, or --model).",
    )
    m.add_argument("store", help="a recording store: a folder or a URL (s3://, gs://, file://)")
    m.add_argument("--target", required=True, help="the target prompt set's name (P*)")
    m.add_argument("--reference", required=True, help="the reference prompt set's name (P)")
    m.add_argument("--k", type=float, default=2.0, help="percent of each weight row to consider (paper: 1-5)")
    m.add_argument("--t-hat", type=int, default=10, help="aggregate the first t-hat UNet calls (paper: 9-20)")
    m.add_argument("--window", default="first", help="'first' (t-hat), 'all', or 'last:N'")
    m.add_argument("--kind", default="skilled", choices=["skilled", "unskilled"])
    m.add_argument(
        "--normalisation",
        default="wanda",
        choices=["wanda", "authors"],
        help="plain Wanda (cond branch) or the authors' per-token normalised, branch-pooled norms",
    )
    m.add_argument("--model", default=None, help="the model (default: the store's model id)")
    m.add_argument(
        "--allow-other-weights",
        action="store_true",
        help="use --model even though its weights differ from those the store was recorded with (refused by default)",
    )
    m.add_argument("--out", type=Path, default=None, help=".safetensors or .zarr (default: beside the store)")
    m.set_defaults(func=cmd_masks)

    e = sub.add_parser(
        "erase",
        help="erase a toy-world concept with ConceptPrune, ESD, AC, P-ESD or P-AC and judge it with the oracle",
        description="Make an edit that erases a concept (a texture or a shape of the toy world) and write it to --out: "
        "masks.safetensors (conceptprune, pesd, pac: weights untouched, the masks are the whole edit) or "
        "weights.safetensors (esd, ac: the fine-tuned parameter group), with edit.json (method, options, seconds, the "
        "model's weights hashes) and summary.json (the oracle's readings of the held-out prompts before and after). "
        "P-ESD and P-AC are our reading of a paper whose code is not public: docs/robustness.md.",
    )
    e.add_argument("--method", required=True, choices=["conceptprune", "esd", "ac", "pesd", "pac"])
    e.add_argument("--concept", required=True, help="striped, dotted, checkered, circle, square, triangle or cross")
    e.add_argument("--out", type=Path, required=True, help="folder for the edit")
    e.add_argument("--k", type=float, default=2.0, help="masks: percent of each weight row pruned (ConceptPrune's k)")
    e.add_argument("--t-hat", type=int, default=10, help="conceptprune: the first t_hat UNet calls")
    e.add_argument("--iterations", type=int, default=None, help="training iterations (default 200)")
    e.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-4 fine-tuning, 0.05 mask logits)")
    e.add_argument("--group", default="esd-x", choices=["esd-x", "esd-x-kv", "esd-u"], help="esd/ac: the parameters trained")
    e.add_argument(
        "--relaxation", default="ste-topk", choices=["ste-topk", "hard-concrete", "sigmoid"], help="pesd/pac: the mask relaxation"
    )
    e.add_argument(
        "--init",
        default="uniform",
        choices=["uniform", "wanda", "conceptprune"],
        help="pesd/pac: the mask logits' start (conceptprune: its mask at the same --k and --t-hat)",
    )
    e.add_argument("--sites", default="ffn2", help="pesd/pac: the sites whose weights are masked (a family: ffn2, ffn1, "
                   "attn2.to_k, attn2.to_v, or a glob over module paths)")  # fmt: skip
    e.add_argument(
        "--tune",
        default=None,
        choices=["esd-x", "esd-x-kv", "esd-u"],
        help="pesd/pac: also fine-tune this parameter group with the mask (the edit holds both)",
    )
    e.add_argument("--tune-lr", type=float, default=1e-4, help="pesd/pac with --tune: the weights' learning rate")
    e.add_argument("--eta", type=float, default=1.0, help="ESD's guidance strength eta")
    e.add_argument("--preserve", action="store_true", help="also hold the frozen prediction for the reference prompts")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--n-per", type=int, default=2, help="evaluation images per texture x colour x shape")
    e.add_argument("--json", action="store_true", help="print one JSON object (the keys of `workbench demo --json`)")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=cmd_erase)

    at = sub.add_parser(
        "attack",
        help="attack an edit (adversarial prompts or weight revival) and report the attack success rate",
        description="Attack an edited toy-world model on the held-out captions that name the concept, and judge each "
        "image with the oracle. unlearndiff: k adversarial prefix tokens, a softmax relaxation over the vocabulary "
        "projected to real tokens; softprompt: k free prefix embeddings; inversion: one learned word in place of the "
        "concept's words; ringabell: a genetic search over k real tokens towards the concept's text direction, no "
        "gradients; revival: fine-tune only the weights the edit changed (pruned entries from zero) on the concept; "
        "benign: fine-tune the same on unrelated prompts. ASR = attacked images showing the concept, with the share "
        "shown without attack (pre-attack) and Wilson 95%% intervals. Prompts and embeddings are kept under --out.",
    )
    at.add_argument(
        "--attack", required=True, choices=["unlearndiff", "softprompt", "inversion", "ringabell", "revival", "benign"]
    )
    at.add_argument(
        "--edit", required=True, type=Path, help="an edit folder written by `workbench erase`, or 'none' (the unedited model)"
    )
    at.add_argument("--concept", required=True, help="the erased concept (a texture or a shape)")
    at.add_argument("--budget", type=int, default=None, help="optimiser steps (Ring-A-Bell: generations); default per attack")
    at.add_argument("--seed", type=int, default=0)
    at.add_argument("--tokens", type=int, default=3, help="adversarial tokens per prompt (k)")
    at.add_argument("--n-per", type=int, default=1, help="held-out captions per colour x shape (x texture)")
    at.add_argument("--steps", type=int, default=25, help="denoising steps of every generation (the toy default: 25)")
    at.add_argument("--out", type=Path, default=None, help="default: stores/attacks/<attack>-<edit>-<concept>-s<seed>")
    at.add_argument("--json", action="store_true", help="print one JSON object")
    at.add_argument("--quiet", action="store_true")
    at.set_defaults(func=cmd_attack)

    ra = sub.add_parser(
        "reactivation",
        help="do an edit's concept neurons wake up under an attack? sensitivity and activity figures",
        description="Record the attack's target prompts on the unedited model, on the edited model, and on the edited "
        "model with the attacked prompts (from the attack's slot embeddings); then the sensitivity of ConceptPrune's "
        "concept neurons (unedited model) against the others, and their activity per UNet call in the three runs.",
    )
    ra.add_argument("--edit", required=True, type=Path, help="the edit the attack ran on")
    ra.add_argument(
        "--attack", required=True, type=Path, help="a prompt attack's --out folder (result.json, adversarial.safetensors)"
    )
    ra.add_argument("--concept", default="striped")
    ra.add_argument("--work", type=Path, default=Path("stores/reactivation"), help="where the three recordings go")
    ra.add_argument("--out", type=Path, default=Path("docs/reactivation.md"))
    ra.add_argument("--k", type=float, default=2.0, help="ConceptPrune's k for the concept neurons")
    ra.add_argument("--t-hat", type=int, default=10)
    ra.add_argument("--steps", type=int, default=25, help="denoising steps of the recordings (the attack's own)")
    ra.add_argument("--quiet", action="store_true")
    ra.set_defaults(func=cmd_reactivation)

    rb = sub.add_parser(
        "robustness",
        help="sweep every eraser's strength on a toy concept and write docs/robustness.md (resumable)",
        description="ConceptPrune over k, ESD-x and AC over the learning rate, P-ESD and P-AC over k, random masks of "
        "P-ESD's size: each edit judged by the oracle on the held-out prompts, one JSON per cell under --work (an "
        "interrupted run resumes), then the markdown with the table and the frontier figure.",
    )
    rb.add_argument("--out", type=Path, default=Path("docs/robustness.md"), help="the markdown; figures go to figures/ beside it")
    rb.add_argument("--work", type=Path, default=Path("stores/robustness"),
                    help="cells, edits, the calibration store, attack runs and reactivation recordings")  # fmt: skip
    rb.add_argument("--concept", default="striped", help="the toy concept to erase: a texture or a shape")
    rb.add_argument("--seeds", default="0", help="comma-separated seeds of the trained erasers")
    rb.add_argument("--n-per", type=int, default=2, help="held-out captions per texture x colour x shape for judging")
    rb.add_argument("--quick", action="store_true", help="a few cells at tiny budgets (a smoke run, not results)")
    rb.add_argument("--core", action="store_true", help="the main settings of each eraser only (11 cells a seed, ~15 min)")
    rb.add_argument(
        "--variants",
        action="store_true",
        help="also the first seed's variants (preservation term, ConceptPrune init, mask + ESD-x weights, masks on "
        "ff.net.0 and attn2.to_v at k=10 and 20 %%, a random attn2.to_v control) and the attn2.to_v mask on every seed",
    )
    rb.add_argument(
        "--attacks",
        default="",
        help="comma-separated attacks (unlearndiff,softprompt,inversion,ringabell,revival,"
        "benign) run on each eraser's main setting and the unedited model, every seed; adds the attack overview, "
        "heat map, table and McNemar tests, and with unlearndiff the concept neurons' reactivation per eraser",
    )
    rb.add_argument("--attack-budget", type=int, default=None, help="steps (generations) of every attack (default: each one's)")
    rb.add_argument("--quiet", action="store_true")
    rb.set_defaults(func=cmd_robustness)

    d = sub.add_parser(
        "demo",
        help="the whole method on the toy world, with an HTML report",
        description="Record the calibration set of a toy-world texture, compute its skilled-neuron masks, prune, "
        "judge images before and after (and with a random control of the same size) with the oracle, and write "
        "an HTML report. Prints the report's path, or one JSON object with --json.",
    )
    d.add_argument("--concept", default="striped", help="the texture to erase: striped, dotted or checkered")
    d.add_argument("--k", type=float, default=2.0, help="percent of each weight row (paper's style default: 2)")
    d.add_argument("--t-hat", type=int, default=10, help="first UNet calls to aggregate (paper's style default: 10)")
    d.add_argument("--steps", type=int, default=25)
    d.add_argument("--n-per", type=int, default=2, help="evaluation images per texture x colour x shape")
    d.add_argument("--out", type=Path, default=Path("stores/demo"), help="folder for the store, masks and report")
    d.add_argument("--no-control", action="store_true", help="skip the random control")
    d.add_argument("--json", action="store_true", help="print one JSON summary instead of progress")
    d.set_defaults(func=cmd_demo)

    a = sub.add_parser(
        "ablate",
        help="sweep pruning settings on the toy world and measure them with the oracle",
        description="For every concept x site family x k x step window x mask kind (skilled, unskilled, random control), "
        "prune, regenerate the held-out evaluation prompts with fixed seeds, and record the oracle's readings in a Zarr "
        "results store. Started again with the same settings it computes only the missing cells.",
    )
    a.add_argument("store", type=Path, help="a toy-world recording holding the concepts' and the reference's prompt sets")
    a.add_argument(
        "--concepts",
        default="striped",
        help="comma-separated toy-world concepts: any texture, shape, colour or scene that is a prompt set in the store "
        "(e.g. striped, circle, red); 'a+b+c' prunes the union of their masks (members of one attribute)",
    )
    a.add_argument(
        "--reference",
        default="plain",
        help="reference prompt set(s), comma-separated; a concept's own set is left out of it (e.g. plain,striped,dotted,checkered)",
    )
    a.add_argument("--families", default="ffn2", help="comma-separated site families (recorded in the store)")
    a.add_argument("--ks", default="1,2,5", help="comma-separated percentages")
    a.add_argument("--windows", default="first:10,all", help="comma-separated: first:T, all, last:N")
    a.add_argument("--kinds", default="skilled,random", help="comma-separated: skilled, unskilled, random")
    a.add_argument("--n-per", type=int, default=2, help="evaluation images per texture x colour x shape (2 gives 128)")
    a.add_argument("--out", type=Path, default=Path("stores/ablation.zarr"))
    a.add_argument("--quiet", action="store_true")
    a.set_defaults(func=cmd_ablate)

    res = sub.add_parser(
        "results",
        help="regenerate the toy-world results in the paper's shape (docs/results.md)",
        description="Record toy:textures and toy:shapes at every site family once, then run the ablations behind tables "
        "(a) style erasure, (b) object erasure, (c) site ablation, (d) k / t-hat trade-off, (e) skilled vs unskilled vs random, "
        "(f) union of three concepts; draw the figures (an HTML page) and rewrite the markdown above its notes marker. "
        "Resumable: started again it computes only missing cells. About 35 minutes on 2 CPU cores.",
    )
    res.add_argument("--out", type=Path, default=Path("docs/results.md"), help="the markdown to (re)write")
    res.add_argument(
        "--stores",
        type=Path,
        default=Path("stores/results"),
        help="folder for the recording, the ablation stores and figures.html",
    )
    res.add_argument("--steps", type=int, default=25)
    res.add_argument("--n-per", type=int, default=2, help="evaluation images per texture x colour x shape (2 gives 128 per cell)")
    res.add_argument("--quick", action="store_true", help="one or two cells per table (a smoke run, not results)")
    res.add_argument("--quiet", action="store_true")
    res.set_defaults(func=cmd_results)

    i = sub.add_parser("info", help="summarise a store", description="Print a store's model, steps, sites and prompt sets.")
    i.add_argument("store", help="a folder or a URL (s3://, gs://, file://)")
    i.add_argument("--check", action="store_true", help="read every chunk once and report a corrupt one")
    i.set_defaults(func=cmd_info)

    rd = sub.add_parser(
        "reduce",
        help="write a store's per-set reductions (stores from before they were automatic)",
        description="Sum every statistic over the prompts of each set, per branch, step and neuron, and keep the sums "
        "in the store (a few MB a set): masks, sweeps and overlaps then read those, not the raw store. Recording does "
        "this when a store is complete; run it on older stores, or after extending one that was read while partial.",
    )
    rd.add_argument("store", type=Path)
    rd.add_argument("--quiet", action="store_true")
    rd.set_defaults(func=cmd_reduce)

    pu = sub.add_parser(
        "push",
        help="copy a complete store to object storage (s3://, gs://, any fsspec URL), a file:// URL or a folder",
        description="Upload every file, the root metadata last, so an interrupted copy is never opened as a store; "
        "run it again to finish. Credentials and endpoints come from the usual environment (AWS_* variables, "
        "AWS_ENDPOINT_URL for an S3-compatible server).",
    )
    pu.add_argument("store", type=Path)
    pu.add_argument("url")
    pu.add_argument("--quiet", action="store_true")
    pu.set_defaults(func=cmd_push)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "record" and args.out is None and args.prompts:
        from .recording import DEFAULT_STORES

        args.out = DEFAULT_STORES / (args.prompts[0].replace(":", "_").replace("/", "_") + ".zarr")
    try:
        return args.func(args)
    except BrokenPipeError:  # `workbench sets | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, FileNotFoundError) as err:  # StoreError and ModelNotFoundError among them
        if _raised_in_storage(err):  # a codec's checksum or decode error, not a message of ours
            return _undecodable(args, err)
        return _fail(str(err))
    except OSError as err:  # a path that cannot be written or read: permissions, a file where a folder goes, a full disk
        return _fail(_os_message(args, err))
    except Exception as err:
        if not _raised_in_storage(err):
            raise  # a bug: keep its traceback
        return _undecodable(args, err)


def _os_message(args, err: OSError) -> str:
    """What to say of an OSError: the path (the error's, else the command's output) and the fix."""
    path = err.filename or getattr(args, "out", None) or getattr(args, "store", None) or "the output path"
    if err.errno == errno.ENOSPC:
        return (f"no space left on the device while writing {path}: free some space (or choose another --out on a disk with room), "
                "then run the same command again: it resumes where it stopped")  # fmt: skip
    return f"cannot use {path} ({err.strerror or err}): choose another path, or fix its permissions"


def _undecodable(args, err: BaseException) -> int:
    store = getattr(args, "store", None) or getattr(args, "out", None) or "STORE"
    # the codec's first sentence only: what follows it (checksum bytes) depends on the data, not on the fault
    what = re.sub(r"\W*\bb['\"].*", "", str(err).split(". ")[0])[:120]
    return _fail(
        f"a chunk of the store could not be decoded ({type(err).__name__}: {what}): "
        f"run `workbench info --check {store}` to find it and what to do"
    )


def _fail(message: str) -> int:
    """One line on stderr, exit code 2."""
    print(f"workbench: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def _raised_in_storage(err: BaseException) -> bool:
    """Did the error come from reading stored bytes (zarr, its codecs), not from our own code?"""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename if tb is not None else ""
    return any(part in where for part in ("/zarr/", "/numcodecs/", "/zstandard", "/zstd"))


if __name__ == "__main__":
    raise SystemExit(main())
