"""`workbench erase | attack | reactivation | robustness | benchmark`: erasers, attacks on their edits, and the
protocol's pages."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ..attacks.methods import ATTACKS
from ..editing.methods import ERASERS
from ..editing.options import PRECISIONS
from ..evaluation.judges import JUDGES
from ..models.families import denoiser_of
from ..registry import options_of
from .cluster import add_dask
from .common import Parents, add_options, device_of, dtype_of, given_options


def _json(obj):
    """``obj`` with NaN as null, so that what --json prints is strict JSON."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json(v) for v in obj]
    return obj


def _pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"


def cmd_erase(args) -> int:
    from ..editing.make import prepare
    from ..evaluation.erasers import erase_and_judge, make_edit
    from ..evaluation.judges import judge_of
    from ..prompts.concepts import get_concept, parts_of
    from .common import load

    out = Path(args.out)
    run = {"seed": args.seed, "steps": args.steps, "guidance": args.guidance, "precision": args.precision,
           "checkpointing": args.gradient_checkpointing, "workdir": out, "progress": not (args.json or args.quiet)}  # fmt: skip
    spec, options, run = prepare(args.method, given_options(args, ERASERS[args.method]), run)  # before any loading
    concept = get_concept(args.concept, n_per=args.n_per, judge=args.judge)
    pipe = load(args)
    parts = parts_of(concept)  # several concepts: one edit, each judged by its own judge
    judges = [
        judge_of(None, c, device=str(denoiser_of(pipe).device)) for c in parts
    ]  # before training: a judge that cannot load fails now
    edit = make_edit(pipe, spec.name, concept, options, run)
    edit.info["judge"] = concept.judge
    pins = {c.name: j.pinned() for c, j in zip(parts, judges)}  # package, version, weights' SHA-256, threshold
    edit.info["judge_pinned"] = pins[concept.name] if len(parts) == 1 else pins
    edit.save(out)
    each = {c.name: _json({**erase_and_judge(pipe, j, edit, n_per=args.n_per, steps=args.steps, guidance=args.guidance,
                                             concept=c), "judge": c.judge, "edit": str(out)})
            for c, j in zip(parts, judges)}  # fmt: skip
    summary = each[concept.name] if len(parts) == 1 else {"method": spec.name, "concept": concept.name, "edit": str(out),
                                                          "seconds": edit.info["seconds"], "per_concept": each}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if args.json:
        print(json.dumps(summary))
        return 0
    for name, one in each.items():
        b, a, h = one["before"], one["after"], one["harm"]
        worst = f"{_pct(h['worst'])} ({h['attribute']})" if h["attribute"] else "n/a (this judge reads no attribute)"
        print(f"{args.method}: '{name}' on target prompts {_pct(b['concept_rate'])} -> {_pct(a['concept_rate'])} "
              f"(judge {one['judge']}); worst drop of an attribute on other prompts {worst}; degraded {_pct(a['degraded_rate'])}; "
              f"{one['seconds']} s to erase; edit in {out}")  # fmt: skip
    return 0


def cmd_attack(args) -> int:
    from ..attacks import attack
    from ..editing.edits import Edit, load_edit
    from ..evaluation.judges import judge_of
    from ..prompts.concepts import get_concept, single
    from .common import load

    spec = ATTACKS[args.attack]
    options = options_of(spec.options, given_options(args, spec), f"attack {spec.name!r}")  # checked before any loading
    concept = single(get_concept(args.concept, n_per=args.n_per, judge=args.judge), "an attack")
    edit = Edit("unedited") if str(args.edit) == "none" else load_edit(args.edit)  # the reference: the model as it is
    pipe = load(args)
    judge = judge_of(None, concept, device=str(denoiser_of(pipe).device))
    out = args.out or Path("stores/attacks") / f"{args.attack}-{Path(args.edit).name}-{concept.name}-s{args.seed}"
    result = attack(pipe, judge, edit, concept, args.attack, budget=args.budget, seed=args.seed, n_per=args.n_per, options=options,
                    steps=args.steps, guidance=args.guidance, out=out, progress=not (args.quiet or args.json))  # fmt: skip
    s = result.summary()
    if args.json:
        print(json.dumps(_json({**s, "out": str(out)}), default=float))
    else:
        lo, hi = s["asr"]["ci95"]
        print(f"{args.attack} on {Path(args.edit).name}: ASR {s['asr']['rate']:.1%} (95% CI {lo:.1%}-{hi:.1%}) = pre-ASR "
              f"{s['pre_asr']['rate']:.1%} + post-ASR {s['post_asr']['rate']:.1%} of {s['prompts']} prompts; '{concept.name}' "
              f"shown on {s['attacked']['k']} attacked images (judge {concept.judge}); {s.get('seconds')} s; prompts in "
              f"{out / 'prompts.csv'}")  # fmt: skip
        if "curve" in s:
            print("ASR by budget (" + ATTACKS[args.attack].unit + "): "
                  + ", ".join(f"{c['budget']}: {c['asr']:.1%}" for c in s["curve"]))  # fmt: skip
    return 0


def cmd_reactivation(args) -> int:
    from ..reports.reactivation import run_reactivation

    r = run_reactivation(args.edit, args.attack, args.concept, work=args.work, out=args.out, k=args.k, t_hat=args.t_hat,
                         steps=args.steps, progress=not args.quiet, model=args.model, device=device_of(args),
                         dtype=dtype_of(args))  # fmt: skip
    s = r["summary"]
    print(f"mean sensitivity: concept neurons {float(s.sel(site='all', group='concept')):+.3f}, others "
          f"{float(s.sel(site='all', group='other')):+.3f}; {args.out}")  # fmt: skip
    return 0


def cmd_robustness(args) -> int:
    from ..reports.robustness import run_robustness

    t = time.time()
    run_robustness(args.out, args.work, concept=args.concept, seeds=tuple(int(x) for x in args.seeds.split(",")),
                   n_per=args.n_per, quick=args.quick, progress=not args.quiet, core=args.core,
                   variants=args.variants, attacks=tuple(a for a in args.attacks.split(",") if a),
                   attack_budget=args.attack_budget, model=args.model, judge=args.judge, device=device_of(args),
                   dtype=dtype_of(args), steps=args.steps, guidance=args.guidance, t_hat=args.t_hat,
                   iterations=args.iterations, cached=args.cached, every_eraser=args.every_eraser,
                   shard=args.shard)  # fmt: skip
    print(f"results: {args.out} ({round(time.time() - t)} s)")
    return 0


def add(sub, parents: Parents) -> None:
    """Declare this group's subcommands."""
    _add_erase(sub, parents)
    _add_attack(sub, parents)
    _add_reactivation(sub, parents)
    _add_robustness(sub, parents)
    _add_benchmark(sub, parents)


def cmd_benchmark(args) -> int:
    from ..reports.benchmark import run_benchmark

    t = time.time()
    table = run_benchmark(args.out, args.work, model=args.model, concepts=_names(args.concepts),
                          erasers=_names(args.erasers), attack=args.attack, attack_budget=args.attack_budget,
                          n_per=args.n_per, steps=args.steps, t_hat=args.t_hat, progress=not args.quiet, shard=args.shard,
                          device=device_of(args))  # fmt: skip
    print(f"results: {args.out} and {args.out.with_name('benchmark.csv')} ({len(table)} rows, {round(time.time() - t)} s)")
    return 0


def _names(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def _add_benchmark(sub, parents: Parents) -> None:
    from ..attacks.methods import main_attack

    b = sub.add_parser(
        "benchmark",
        parents=[parents.quiet, parents.model],
        help="every eraser on every toy concept in UnlearnCanvas's form (UA, IRA, CRA, toy FID, pre/post ASR)",
        description="One edit per (toy concept, eraser), each eraser's main setting, judged by the oracle on the "
        "concept's held-out prompts and attacked: UA (target images without the concept), IRA (the concept's own "
        "attribute on the other prompts), CRA (every other attribute there), toy FID, and pre-ASR / post-ASR / ASR. "
        "Cells live under --work (an interrupted run resumes; --shard splits them over processes); writes the "
        "page, benchmark.csv beside it and a frontier figure. Erasers: " + ", ".join(ERASERS) + ".",
    )
    b.add_argument("--out", type=Path, default=Path("docs/benchmark.md"), help="the markdown; the CSV and figures go beside it")
    b.add_argument("--work", type=Path, default=Path("stores/benchmark"), help="the cells, edits and attack runs (resumable)")
    b.add_argument("--concepts", default=None, help="comma-separated concepts (default: every toy texture and shape)")
    b.add_argument("--erasers", default=None, help="comma-separated erasers (default: every registered one)")
    b.add_argument("--attack", default=None, choices=list(ATTACKS), help=f"the attack (default: {main_attack()})")
    b.add_argument("--attack-budget", type=int, default=None, help="the attack's budget (default: its own)")
    b.add_argument("--n-per", type=int, default=2, help="held-out captions per texture x colour x shape")
    b.add_argument("--steps", type=int, default=None, help="denoising steps of every generation (default: the model's own)")
    b.add_argument("--t-hat", type=int, default=None, help="ConceptPrune's t-hat (default 10; at most the steps)")
    b.add_argument("--shard", default=None, help="I/N: this process's share first (default: torchrun's RANK of WORLD_SIZE)")
    add_dask(b)
    b.set_defaults(func=cmd_benchmark)


def _add_erase(sub, parents: Parents) -> None:
    e = sub.add_parser(
        "erase",
        parents=[parents.quiet, parents.model, parents.concept],
        help=f"erase a concept ({', '.join(ERASERS)}) on any SD-family model and judge it",
        description="Make an edit that erases a concept (a toy texture or shape, a paper set such as nudity or van_gogh, or "
        "a concept file: docs/concepts.md) from --model and write it to --out: "
        "masks.safetensors (pruning erasers: weights untouched, the masks are the whole edit) or "
        "weights.safetensors (fine-tuning and closed-form erasers: the changed parameters) or features.safetensors (feature "
        "ablation: an SAE and the features it scales at inference), with edit.json (method, options, seconds, the "
        "model's weights hashes) and summary.json (the judge's readings of the concept's held-out prompts before and after, "
        "and the harm: the worst accuracy drop on the other prompts, degraded images). "
        "P-ESD and P-AC are our reading of a paper whose code is not public: docs/robustness.md.",
    )
    methods = ERASERS.specs()
    e.add_argument("--method", required=True, choices=[m.name for m in methods],
                   help="the eraser: " + "; ".join(f"{m.name}: {m.help}" for m in methods))  # fmt: skip
    e.add_argument("--out", type=Path, required=True, help="folder for the edit")
    add_options(e.add_argument_group("eraser options (each takes its own; `workbench erase --method M --bad-option` "
                                     "lists them)"), methods)  # fmt: skip
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                   help="the denoiser's forward in training: fp32, or bf16/fp16 autocast (weights and Adam stay float32)")  # fmt: skip
    e.add_argument("--gradient-checkpointing", action="store_true", help="diffusers' gradient checkpointing while training "
                   "(less GPU memory at SD size, more time)")  # fmt: skip
    e.add_argument(
        "--n-per", type=int, default=2, help="evaluation images per held-out prompt pattern (toy: per texture x colour x shape)"
    )
    e.add_argument("--json", action="store_true", help="print one JSON object (the keys of `workbench demo --json`)")
    e.set_defaults(func=cmd_erase)


def _add_attack(sub, parents: Parents) -> None:
    at = sub.add_parser(
        "attack",
        parents=[parents.quiet, parents.model, parents.concept],
        help="attack an edit (adversarial prompts or weight revival) and report the attack success rate",
        description="Attack an edited model on the concept's held-out prompts that carry it, and judge each image with "
        "the concept's judge (or --judge). Rates as Diffusion-MU-Attack defines them: pre-ASR (prompts shown without attack), "
        "post-ASR (shown only after it), ASR = pre-ASR + post-ASR, with Wilson 95 % intervals, and the share of attacked "
        "images showing the concept. result.json, prompts.csv (every prompt, its attacked form and the judge's verdicts) "
        "and the embeddings are kept under --out. The attacks: "
        + "; ".join(f"{a.name}: {a.help}" for a in ATTACKS.specs())
        + ". Attacks that need routes take a concept with held-out routes (lang:striped, ... on --model toy-lang).",
    )
    at.add_argument("--attack", required=True, choices=list(ATTACKS))
    at.add_argument(
        "--edit", required=True, type=Path, help="an edit folder written by `workbench erase`, or 'none' (the unedited model)"
    )
    at.add_argument(
        "--budget",
        type=int,
        default=None,
        help="the attack's budget (default: its own): " + "; ".join(f"{a.name} {a.budget} {a.unit}" for a in ATTACKS.specs()),
    )
    at.add_argument("--seed", type=int, default=0)
    at.add_argument("--n-per", type=int, default=1, help="held-out captions per colour x shape (x texture)")
    at.add_argument("--out", type=Path, default=None, help="default: stores/attacks/<attack>-<edit>-<concept>-s<seed>")
    at.add_argument("--json", action="store_true", help="print one JSON object")
    add_options(at.add_argument_group("attack options (each takes its own; `workbench attack --attack A --bad-option` "
                                      "lists them)"), ATTACKS.specs())  # fmt: skip
    at.set_defaults(func=cmd_attack)


def _add_reactivation(sub, parents: Parents) -> None:
    ra = sub.add_parser(
        "reactivation",
        parents=[parents.quiet, parents.mask, parents.model],
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
    ra.add_argument("--steps", type=int, default=25, help="denoising steps of the recordings (the attack's own)")
    ra.set_defaults(func=cmd_reactivation)


def _add_robustness(sub, parents: Parents) -> None:
    rb = sub.add_parser(
        "robustness",
        parents=[parents.quiet, parents.model],
        help="sweep every eraser's strength on a concept and write docs/robustness.md (resumable)",
        description="Every registered eraser over its own grid settings ("
        + "; ".join(
            f"{m.name}: " + ", ".join(x.label for x in m.grid("full", 200)) for m in ERASERS.specs() if m.grid("full", 200)
        )
        + "), random masks of the mask erasers' sizes drawn several times: each edit judged by the concept's judge on the "
        "held-out prompts, one JSON per cell under --work (an interrupted run resumes), then the markdown with the table "
        "and the frontier figure.",
    )
    rb.add_argument("--out", type=Path, default=Path("docs/robustness.md"), help="the markdown; figures go to figures/ beside it")
    rb.add_argument("--work", type=Path, default=Path("stores/robustness"),
                    help="cells, edits, the calibration store, attack runs and reactivation recordings")  # fmt: skip
    rb.add_argument("--concept", default="striped", help="the concept to erase: a name (`workbench concepts`) or a concept file")
    rb.add_argument(
        "--judge",
        default=None,
        help=f"override the concept's judge ({', '.join(JUDGES)}: KIND or KIND:ARG, `workbench erase --help`)",
    )
    rb.add_argument("--steps", type=int, default=None, help="denoising steps of every generation (default: the model's own)")
    rb.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (default: the model's own)")
    rb.add_argument("--t-hat", type=int, default=None, help="ConceptPrune's t-hat (default 10; at most the UNet calls per image)")
    rb.add_argument("--iterations", type=int, default=None, help="every trained cell's iterations (default 200; --quick 20)")
    rb.add_argument("--seeds", default="0", help="comma-separated seeds of the trained erasers")
    rb.add_argument("--n-per", type=int, default=2, help="held-out captions per texture x colour x shape for judging")
    rb.add_argument("--quick", action="store_true", help="a few cells at tiny budgets (a smoke run, not results)")
    rb.add_argument("--core", action="store_true", help="the main settings of each eraser only (15 cells a seed)")
    rb.add_argument("--every-eraser", action="store_true",
                    help="with --core and several --seeds: repeat AC's and P-AC's main settings too, not only ESD-x's and P-ESD's")  # fmt: skip
    rb.add_argument("--cached", action="store_true",
                    help="also ESD-x lr=1e-4 and P-ESD k=10%% trained on one cached set (the old protocol) beside the fresh draws")  # fmt: skip
    rb.add_argument(
        "--variants",
        action="store_true",
        help="also the first seed's variants (preservation term, ConceptPrune init, mask + ESD-x weights, masks on "
        "ff.net.0 and attn2.to_v at k=10 and 20 %%, a random attn2.to_v control) and the attn2.to_v mask on every seed",
    )
    rb.add_argument(
        "--attacks",
        default="",
        help=f"comma-separated attacks ({','.join(ATTACKS)}; {', '.join(a.name for a in ATTACKS.specs() if a.routes)} need a concept with routes: the language world) run on each eraser's main setting and the unedited model, every seed; adds the attack overview, "
        "heat map, table and McNemar tests, and with unlearndiff the concept neurons' reactivation per eraser",
    )
    rb.add_argument(
        "--shard",
        default=None,
        help="I/N: make and judge only this shard's cells and attack runs (default: RANK/WORLD_SIZE under torchrun or "
        "accelerate launch), then wait while other shards of the same --work folder run and make what they left (a killed "
        "shard's share). Every shard takes the same arguments and --work (a shared folder) and writes the same page; "
        "any kill resumes",
    )
    rb.add_argument("--attack-budget", type=int, default=None, help="steps (generations) of every attack (default: each one's)")
    add_dask(rb)
    rb.set_defaults(func=cmd_robustness)
