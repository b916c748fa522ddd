"""`workbench demo | ablate | results | table`: the method end to end, ablation grids, the paper's tables
and any report table as CSV."""

from __future__ import annotations

import json
from pathlib import Path

from ..evaluation.judges import JUDGES
from .cluster import add_dask
from .common import Parents


def cmd_demo(args) -> int:
    from ..reports.demo import run_demo

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


def cmd_ablate(args) -> int:
    from ..evaluation.ablate import METRICS, Ablation, ablate
    from ..models.toyworld import load_oracle
    from ..store import open_store
    from .common import load

    tree = open_store(args.store)
    from ..models.loading import TOY_WORLDS

    recorded = tree.wb.provenance["model_id"]
    toy = recorded in TOY_WORLDS  # both worlds draw the same images: the oracle judges them
    if (toy or args.model in TOY_WORLDS) and recorded != args.model:
        raise ValueError(
            f"the store was recorded on {tree.attrs['provenance']['model_id']!r} and --model is {args.model!r}: "
            "ablate a store with the model it was recorded with (--model)"
        )
    spec = Ablation(concepts=args.concepts.split(","), reference=args.reference, families=args.families.split(","),
                    ks=[float(k) for k in args.ks.split(",")], windows=args.windows.split(","), kinds=args.kinds.split(","),
                    steps=int(tree.wb.provenance["steps"]), n_per=args.n_per, judge=args.judge)  # fmt: skip
    from ..store.shards import chosen_shard

    ds = ablate(load(args), load_oracle() if toy else None, tree, spec, args.out, progress=not args.quiet,
                shard=chosen_shard(args.shard))  # fmt: skip
    print("unpruned baseline (what each cell is compared with):")
    for concept, b in ds.attrs["baseline"].items():
        others = ", ".join(f"{a} {v:.1%}" for a, v in b["other_accuracy"].items())
        extra = "".join(f"; {k} {b[k]:.2f}" for k in ("target_other", "fid", "clip_score") if k in b)
        print(f"  {concept}: concept rate {b['concept_rate']:.1%}; other prompts: {others or '(no attribute read)'}{extra}")
    shown = [m for m in METRICS if not ds[m].isnull().all()]
    print(ds[shown].to_dataframe().to_string())
    print(args.out)
    return 0


def cmd_results(args) -> int:
    from ..reports.results import run_results

    done = run_results(args.out, args.stores, steps=args.steps, n_per=args.n_per, quick=args.quick, progress=not args.quiet)
    print(f"results: {done['markdown']}\nfigures: {done['figures']}\n({done['seconds']} s)")
    return 0


def cmd_table(args) -> int:
    from ..reports.frames import frame_of

    df = frame_of(args.path, prompts=args.prompts, thresholds=args.thresholds)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.csv, index=False)
        print(f"{len(df)} rows, {len(df.columns)} columns: {args.csv}")
    else:
        print(df.to_string(index=False, max_colwidth=40))
    return 0


def add(sub, parents: Parents) -> None:
    """Declare this group's subcommands."""
    d = sub.add_parser(
        "demo",
        parents=[parents.mask],
        help="the whole method on the toy world, with an HTML report",
        description="Record the calibration set of a toy-world texture, compute its skilled-neuron masks, prune, "
        "judge images before and after (and with a random control of the same size) with the oracle, and write "
        "an HTML report. Prints the report's path, or one JSON object with --json.",
    )
    d.add_argument("--concept", default="striped", help="the texture to erase: striped, dotted or checkered")
    d.add_argument("--steps", type=int, default=25)
    d.add_argument("--n-per", type=int, default=2, help="evaluation images per texture x colour x shape")
    d.add_argument("--out", type=Path, default=Path("stores/demo"), help="folder for the store, masks and report")
    d.add_argument("--no-control", action="store_true", help="skip the random control")
    d.add_argument("--json", action="store_true", help="print one JSON summary instead of progress")
    d.set_defaults(func=cmd_demo)

    a = sub.add_parser(
        "ablate",
        parents=[parents.quiet, parents.model],
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
    a.add_argument("--shard", default=None, help="I/N: this process's share of the cells first, then what other shards of "
                   "--out leave (default: RANK/WORLD_SIZE under torchrun or accelerate launch)")  # fmt: skip
    add_dask(a)
    a.add_argument("--judge", default=None, help="judge every concept with this (default: the oracle on the toy world, "
                   f"each concept's own judge on other models: {', '.join(JUDGES)}, as KIND or KIND:ARG)")  # fmt: skip
    a.set_defaults(func=cmd_ablate)

    res = sub.add_parser(
        "results",
        parents=[parents.quiet],
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
    res.set_defaults(func=cmd_results)
    _add_table(sub)


def _add_table(sub) -> None:
    t = sub.add_parser(
        "table",
        help="a report's table as CSV (or printed): robustness cells, attack runs, ablation results",
        description="Read the table a report was written from, at full precision: a `workbench robustness` --work "
        "folder (one row per judged edit), its attacks/ folder (one row per attack run), or an ablation result store "
        "(stores/results/*.zarr, `workbench ablate --out`). Rates and drops are fractions. In Python: "
        "wb.cells_frame(work), wb.attacks_frame(work), wb.results_frame(wb.open_results(path)).",
    )
    t.add_argument("path", type=Path, help="a robustness --work folder, its attacks/ folder, or an ablation .zarr")
    t.add_argument("--csv", type=Path, default=None, help="write the table here instead of printing it")
    t.add_argument(
        "--prompts",
        action="store_true",
        help="with an attacks/ folder: one row per prompt of every run (prompt, seed, attacked prompt or embedding, "
        "the judge's verdict and score before and after: each run's prompts.csv gathered)",
    )
    t.add_argument(
        "--thresholds",
        type=lambda text: [float(x) for x in text.split(",") if x.strip()],
        default=None,
        help="with an attacks/ folder: every run whose judge gives scores judged again at each threshold from its "
        "prompts.csv (pre_asr, post_asr, asr; e.g. NudeNet's 0.45,0.6,0.75), no image generated",
    )
    t.set_defaults(func=cmd_table)
