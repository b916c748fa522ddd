"""`workbench record | sites | sets | info | reduce | push | masks`: recording stores and the masks read from them."""

from __future__ import annotations

import sys
from pathlib import Path

from ..models.families import MODEL_FAMILIES
from .common import Parents, load


def _joined(names: str | tuple[str, ...]) -> str:
    return names if isinstance(names, str) else ",".join(names)


def cmd_record(args) -> int:
    from ..prompts import PromptSet, get
    from ..recording import finalise, record
    from ..store.shards import chosen_shard

    if args.finalise is not None:
        print(finalise(args.finalise))
        return 0
    if not args.prompts:
        raise ValueError("give --prompts SET ... to record (or --finalise STORE to complete a sharded store)")
    shard = chosen_shard(args.shard)
    prompts = PromptSet()
    for name in args.prompts:
        prompts = prompts + get(name, seed=args.seed)
    pipe = load(args)
    sites = args.sites.split(",") if args.sites else None  # None: the model family's default
    out = record(pipe, prompts, args.out, sites=sites, steps=args.steps, guidance=args.guidance, batch_size=args.batch_size,
                 stats=args.stats.split(","), size=args.size, progress=not args.quiet, shard=shard,
                 sums_only=args.sums_only)  # fmt: skip
    print(out)
    return 0


def cmd_sites(args) -> int:
    from ..models import catalogue, family_of, select

    pipe = load(args)
    chosen = select(pipe, args.sites.split(",")) if args.sites else catalogue(pipe)
    for s in chosen:
        print(f"{s.family:15s} {s.width:6d}  {s.name}")
    family = family_of(pipe)
    print(f"# {len(chosen)} sites; model family {family.name}; site families: {', '.join(family.sites)}", file=sys.stderr)
    return 0


def cmd_sets(args) -> int:
    from ..prompts import get, named_sets

    if args.name:
        for p in get(args.name, seed=args.seed):
            print(f"{p.set}\t{p.seed}\t{p.text}")
        return 0
    return _listing(named_sets(), 28)


def _listing(named: dict[str, str], width: int) -> int:
    """One line a name: the name padded to ``width``, then what it is."""
    for name, what in named.items():
        print(f"{name:{width}s} {what}")
    return 0


def cmd_concepts(args) -> int:
    from ..prompts.concepts import get_concept, named_concepts

    if args.name:
        c = get_concept(args.name, n_per=args.n_per)
        print(f"# {c.name}: judge {c.judge}{'; labels ' + ' | '.join(c.labels) if c.labels else ''} ({c.source})")
        for role, ps in (
            ("target", c.target),
            ("anchor", c.anchor),
            ("eval.target", c.eval_target),
            ("eval.other", c.eval_other),
        ):
            for p in ps:
                print(f"{role}\t{p.seed}\t{p.text}")
        return 0
    return _listing(named_concepts(), 20)


def cmd_info(args) -> int:
    from ..store import StoreError, check_store, describe, open_store
    from ..store.reader import missing_chunks

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
    from ..store import WriterLock, consolidate, reduce_store

    with WriterLock(args.store, role="reduce"):
        reduce_store(str(args.store), progress=not args.quiet)
        consolidate(args.store)  # the consolidated listing names the new arrays
    print(f"{args.store}: per-set reductions written; masks, sweeps and overlaps now read those", file=sys.stderr)
    return 0


def cmd_push(args) -> int:
    from ..store import push

    push(args.store, args.url, progress=not args.quiet)
    print(f"{args.store} -> {args.url}", file=sys.stderr)
    return 0


def cmd_masks(args) -> int:
    from ..analysis import concept_masks, density, parse_window, save_masks
    from ..analysis.weights import weights_from_files
    from ..store import open_store

    tree = open_store(args.store)
    model = tree.wb.provenance["model_id"] if args.model is None else args.model
    t_hat, window = parse_window(f"first:{args.t_hat}" if args.window == "first" else args.window)
    found = weights_from_files(tree, model)  # the folder's files, when they digest as the store's weights: no model
    weights, total, match = (*found, True) if found is not None else _weights_from_pipeline(tree, model, args)
    masks = concept_masks(tree, weights, args.target, args.reference, k=args.k, t_hat=t_hat, window=window,
                          kind=args.kind, normalisation=args.normalisation)  # fmt: skip
    masks.attrs["store"] = str(args.store)
    masks.attrs["weights_model"] = model
    masks.attrs["weights_match_store"] = match
    when = f"t{args.t_hat}" if args.window == "first" else args.window.replace(":", "")
    out = args.out or Path(str(args.store).removesuffix(".zarr") + f"-{args.target}-k{args.k:g}-{when}.safetensors")
    save_masks(masks, out)
    d = density(masks, total_params=total)
    for site, frac in zip(d["site"].values, d["density"].values):
        print(f"{frac:8.4%}  {site}")
    print(
        f"{float(d['overall']):8.4%}  of the masked sites' weights; {float(d['of_model']):.4%} of all the denoiser's parameters"
    )
    print(out)
    return 0


def _weights_from_pipeline(tree, model: str, args) -> tuple[dict, int, bool]:
    """The store's site weights from the loaded pipeline (checked against the store's weights hash),
    its UNet's parameter count, and whether the weights are the store's."""
    from ..models import check_weights, load_pipeline, weights_of
    from ..models.families import denoiser_of

    pipe = load_pipeline(model, device="cpu")
    weights = weights_of(pipe, tree, allow_other_weights=args.allow_other_weights)
    total = sum(p.numel() for p in denoiser_of(pipe).parameters())
    return weights, total, check_weights(pipe, tree.wb.provenance, allow_other_weights=True)


def cmd_neuron(args) -> int:
    import json

    from ..analysis import neuron_profile, parse_window, step_window, top_prompts
    from ..store import open_store

    tree = open_store(args.store)
    neurons = [int(x) for x in str(args.neuron).split(",")]
    steps = None
    if args.window != "all":
        t_hat, window = parse_window(f"first:{args.t_hat}" if args.window == "first" else args.window)
        steps = step_window(tree.sizes["step"], t_hat, window)
    top = top_prompts(tree, args.site, neurons, k=args.top, steps=steps, prompt_set=args.set)
    out: dict = {"site": args.site, "top": {}}
    for j in neurons:
        rows = top.sel(neuron=j)
        out["top"][j] = [{"prompt": int(p), "text": str(t), "set": str(s), "seed": int(sd), "activation": float(a)}
                         for p, t, s, sd, a in zip(rows["prompt"].values, rows["text"].values, rows["set"].values,
                                                   rows["seed"].values, rows["activation"].values)]  # fmt: skip
    if args.target and args.reference:
        from ..models import load_pipeline, weights_of

        model = tree.wb.provenance["model_id"] if args.model is None else args.model
        weights = weights_of(load_pipeline(model, device="cpu"), tree)
        prof = neuron_profile(tree, weights, args.site, neurons, args.target, args.reference, k=args.k)
        out["profile"] = {j: {"target": prof["target"].sel(neuron=j).values.tolist(),
                              "reference": prof["reference"].sel(neuron=j).values.tolist(),
                              "skilled_steps": [int(t) for t in prof["step"].values[prof["skilled"].sel(neuron=j).values]]}
                          for j in neurons}  # fmt: skip
    if args.json:
        print(json.dumps(out))
        return 0
    for j in neurons:
        print(
            f"neuron {j} of {args.site}: the prompts that drive it most" + (f" (steps {steps[0]}-{steps[-1]})" if steps else "")
        )
        for r in out["top"][j]:
            print(f"  {r['activation']:10.3f}  [{r['set']}] {r['text']} (seed {r['seed']})")
        if "profile" in out:
            p = out["profile"][j]
            print(
                f"  skilled (k = {args.k:g} %, {args.target} against {args.reference}) at steps: {p['skilled_steps'] or 'none'}"
            )
    return 0


def cmd_maps(args) -> int:
    from ..analysis import load_masks, strongest_neurons
    from ..models import check_weights
    from ..prompts import PromptSet, get
    from ..recording import record_maps
    from ..store import open_store
    from ..store.maps import open_maps
    from .common import load

    tree = open_store(args.store)
    if bool(args.masks) == bool(args.site):
        raise ValueError("choose the neurons with --masks MASKS (its strongest columns per site) or --site S --neuron J[,K]")
    if args.masks:
        neurons = strongest_neurons(load_masks(args.masks), per_site=args.per_site)
    else:
        if not args.neuron:
            raise ValueError("--site needs --neuron J[,K]: the neuron indices to map")
        neurons = {args.site: [int(x) for x in str(args.neuron).split(",")]}
    prompts = PromptSet()
    for name in args.prompts:
        prompts = prompts + get(name, seed=args.seed)
    if args.limit:
        prompts = PromptSet(list(prompts)[: args.limit])
    pipe = load(args)
    prov = tree.wb.provenance
    check_weights(pipe, prov)  # the unedited weights the store was recorded with (an --edit goes on top of them)
    calls = [int(x) for x in str(args.calls).split(",")]
    ctx = _applied(pipe, args.edit)
    with ctx:
        path = record_maps(pipe, args.store, prompts, neurons, steps=calls, name=args.name, guidance=prov.get("guidance"),
                           n_steps=prov.get("steps"), batch_size=args.batch_size, progress=not args.quiet)  # fmt: skip
    maps = open_maps(args.store, args.name)
    print(f"{path}: {maps.sizes['map_prompt']} prompts, {sum(len(v) for v in neurons.values())} neurons in {len(neurons)} sites, "
          f"denoiser calls {calls}")  # fmt: skip
    return 0


def _applied(pipe, edit):
    import contextlib

    if edit is None:
        return contextlib.nullcontext()
    from ..editing import applied

    return applied(pipe, edit)


def add(sub, parents: Parents) -> None:
    """Declare this group's subcommands."""
    _add_record(sub, parents)
    _add_sites(sub, parents)
    _add_sets(sub, parents)
    _add_concepts(sub, parents)
    _add_info(sub, parents)
    _add_reduce(sub, parents)
    _add_push(sub, parents)
    _add_masks(sub, parents)
    _add_neuron(sub, parents)
    _add_maps(sub, parents)


def _add_record(sub, parents: Parents) -> None:
    r = sub.add_parser(
        "record",
        parents=[parents.model, parents.quiet],
        help="run the model over prompt sets and store per-site, per-step activation statistics",
        description="Generate images for prompt sets with hooks on the chosen sites, and write per prompt, "
        "CFG branch, denoiser call and neuron the token-reduced statistics into a Zarr store. Started again "
        "with the same arguments it records only what is missing; new prompt sets extend the store.",
    )
    r.add_argument(
        "--prompts",
        nargs="+",
        metavar="SET",
        help="named sets (see `workbench sets`) or text files, one prompt a line",
    )
    r.add_argument("--out", default=None, help="the store, a local folder (default: stores/<first set>.zarr)")
    r.add_argument(
        "--sites",
        default=None,
        help="comma-separated site families or globs over module paths (default: the model family's: "
        + "; ".join(f"{f.name}: {_joined(f.default_site)}" for f in MODEL_FAMILIES.specs())
        + "; `workbench sites --model M` lists them all)",
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
    r.add_argument("--sums-only", action="store_true", help="keep only the per-set sums as it records, no per-prompt "
                   "rows: what masks, sweeps and overlaps read, a fixed size whatever the number of prompts (docs/scale.md)")  # fmt: skip
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
    r.set_defaults(func=cmd_record)


def _add_sites(sub, parents: Parents) -> None:
    s = sub.add_parser(
        "sites",
        parents=[parents.model],
        help="list the hookable sites of a model",
        description="List hookable layers: family, width (neurons) and module path.",
    )
    s.add_argument("--sites", default=None, help="only those a filter selects (families or globs, comma-separated)")
    s.set_defaults(func=cmd_sites)


def _add_sets(sub, parents: Parents) -> None:
    c = sub.add_parser(
        "sets",
        help="list named prompt sets, or print one",
        description="Named calibration sets: the paper's Table 9 and the toy world's.",
    )
    c.add_argument("name", nargs="?", help="print this set's prompts (set, seed, text)")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=cmd_sets)


def _add_concepts(sub, parents: Parents) -> None:
    cc = sub.add_parser(
        "concepts",
        help="list the concepts erase, attack and robustness take by name, or print one",
        description="Concepts: what to erase (target prompts), what towards (anchor prompts), the held-out prompts it is "
        "judged on, and its judge. Toy textures and shapes, the paper's sets, or your own file (docs/concepts.md).",
    )
    cc.add_argument("name", nargs="?", help="print this concept's prompts (role, seed, text): a name or a .toml file")
    cc.add_argument("--n-per", type=int, default=2, help="held-out images per prompt pattern")
    cc.set_defaults(func=cmd_concepts)


def _add_info(sub, parents: Parents) -> None:
    i = sub.add_parser("info", help="summarise a store", description="Print a store's model, steps, sites and prompt sets.")
    i.add_argument("store", help="a folder or a URL (s3://, gs://, file://)")
    i.add_argument("--check", action="store_true", help="read every chunk once and report a corrupt one")
    i.set_defaults(func=cmd_info)


def _add_reduce(sub, parents: Parents) -> None:
    rd = sub.add_parser(
        "reduce",
        parents=[parents.quiet],
        help="write a store's per-set reductions (stores from before they were automatic)",
        description="Sum every statistic over the prompts of each set, per branch, step and neuron, and keep the sums "
        "in the store (a few MB a set): masks, sweeps and overlaps then read those, not the raw store. Recording does "
        "this when a store is complete; run it on older stores, or after extending one that was read while partial.",
    )
    rd.add_argument("store", type=Path)
    rd.set_defaults(func=cmd_reduce)


def _add_push(sub, parents: Parents) -> None:
    pu = sub.add_parser(
        "push",
        parents=[parents.quiet],
        help="copy a complete store to object storage (s3://, gs://, any fsspec URL), a file:// URL or a folder",
        description="Upload every file, the root metadata last, so an interrupted copy is never opened as a store; "
        "run it again to finish. Credentials and endpoints come from the usual environment (AWS_* variables, "
        "AWS_ENDPOINT_URL for an S3-compatible server).",
    )
    pu.add_argument("store", type=Path)
    pu.add_argument("url")
    pu.set_defaults(func=cmd_push)


def _add_masks(sub, parents: Parents) -> None:
    m = sub.add_parser(
        "masks",
        parents=[parents.mask],
        help="compute skilled/unskilled neuron masks from a store",
        description="ConceptPrune masks: top-k% of each row of the target's Wanda scores, kept where the target "
        "scores above (skilled) or below (unskilled) the reference, OR-ed over the first t-hat denoiser calls. "
        "Needs the weights of the model the store was recorded with (read from its provenance, or --model).",
    )
    m.add_argument("store", help="a recording store: a folder or a URL (s3://, gs://, file://)")
    m.add_argument("--target", required=True, help="the target prompt set's name (P*)")
    m.add_argument("--reference", required=True, help="the reference prompt set's name (P)")
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


def _add_neuron(sub, parents: Parents) -> None:
    n = sub.add_parser(
        "neuron",
        help="one neuron: the prompts that drive it most, and its Wanda score per step",
        description="Read a store for one or more neurons of a site: the recorded prompts with the largest activation "
        "(sqrt of the sum of squares over the step window and tokens, cond branch) and, with --target and --reference, "
        "the Wanda score per step on both sets and the steps where ConceptPrune's skilled mask at --k holds the column.",
    )
    n.add_argument("store", help="a recording store")
    n.add_argument("--site", required=True, help="the site's module path (`workbench info STORE` lists them)")
    n.add_argument("--neuron", required=True, help="a neuron index, or several comma-separated")
    n.add_argument("--top", type=int, default=5, help="how many prompts to list")
    n.add_argument("--set", default=None, help="rank only this prompt set's prompts")
    n.add_argument("--window", default="all", help="steps to sum over: 'all', 'first' (--t-hat) or 'last:N'")
    n.add_argument("--t-hat", type=int, default=10)
    n.add_argument("--target", default=None, help="the target prompt set, for the per-step profile")
    n.add_argument("--reference", default=None, help="the reference prompt set, for the per-step profile")
    n.add_argument("--k", type=float, default=2.0, help="ConceptPrune's k for the skilled steps")
    n.add_argument("--model", default=None, help="the weights for the profile (default: the store's model id)")
    n.add_argument("--json", action="store_true", help="print one JSON object")
    n.set_defaults(func=cmd_neuron)


def _add_maps(sub, parents: Parents) -> None:
    mp = sub.add_parser(
        "maps",
        parents=[parents.model, parents.quiet],
        help="record where chosen neurons fire: per-token activation maps and the images, kept in the store",
        description="Generate the given prompts again (the store's steps and guidance) and keep, for the chosen neurons and "
        "denoiser calls, each neuron's input over the latent's token grid (cond branch, float16) and the generated image, in "
        "the store's maps group (maps, or maps-NAME). Neurons: the strongest columns of a masks file per site (--masks), or "
        "--site and --neuron. --edit maps an edited model (give it its own --name); started again it resumes.",
    )
    mp.add_argument("store", help="a recording store (the maps are kept inside it)")
    mp.add_argument("--prompts", nargs="+", required=True, metavar="SET", help="named sets or text files to map")
    mp.add_argument("--limit", type=int, default=None, help="map only the first N prompts")
    mp.add_argument("--seed", type=int, default=0, help="seed of the first prompt (as `workbench record`)")
    mp.add_argument("--masks", default=None, help="a masks file (`workbench masks`): map its strongest columns per site")
    mp.add_argument("--per-site", type=int, default=16, help="with --masks: neurons per site")
    mp.add_argument("--site", default=None, help="one site's module path (with --neuron)")
    mp.add_argument("--neuron", default=None, help="neuron indices, comma-separated")
    mp.add_argument("--calls", default="0", help="denoiser calls to map, comma-separated (0 = the first, noisiest)")
    mp.add_argument("--edit", default=None, help="an edit folder to apply first (`workbench erase --out`)")
    mp.add_argument("--name", default=None, help="the maps group's name (default 'maps'; e.g. esd, attacked)")
    mp.add_argument("--batch-size", type=int, default=4)
    mp.set_defaults(func=cmd_maps)
