"""Do concept neurons that an edit switched off wake up under an attack? (the P-ESD paper's Figs. 2,
3 and 5 on the toy world)

From one edit and one prompt attack on it (``workbench attack --out DIR``), three recordings of the
attack's target prompts: the unedited model (with the concept's calibration pairs, to find its
concept neurons: ConceptPrune's skilled masks), the edited model on the plain prompts, and the
edited model on the attacked prompts (recorded from the attack's slot embeddings). Then, with the
analysis functions of ``workbench.analysis.sensitivity``: the sensitivity of concept neurons vs the
others, and the concept neurons' activity per step in the three runs.
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from ..analysis import concept_activity, concept_masks, concept_neurons, sensitivity, sensitivity_summary
from ..attacks.score import read_result
from ..editing.edits import Edit, applied, load_edit
from ..editing.methods import esd as esd_eraser
from ..editing.methods import pesd as pesd_eraser
from ..evaluation.erasers import calibration
from ..models import load_pipeline, weights_of
from ..models.slots import Slots
from ..prompts import Prompt, PromptSet
from ..recording import record
from ..store import open_store

ESD, PESD = esd_eraser.SPEC.name, pesd_eraser.SPEC.name


def _attack_run(folder: Path) -> tuple[dict, list[Prompt], list[Prompt], object]:
    """A prompt attack's ``--out`` folder: (result, the plain prompts, the attacked prompts, the
    slots' embeddings); refused for an attack without prompt slots."""
    from safetensors.torch import load_file

    res = read_result(folder)
    if "slot_texts" not in res:
        raise ValueError(f"{folder} holds a {res.get('attack')} result without prompt slots: give a prompt attack's --out folder")
    clean = [Prompt(r["prompt"], "clean", r["seed"]) for r in res["per_prompt"]]
    attacked = [Prompt(t, "attacked", r["seed"]) for t, r in zip(res["slot_texts"], res["per_prompt"])]
    return res, clean, attacked, load_file(str(folder / "adversarial.safetensors"))["embeddings"]


def _record_edited(pipe, edit, res: dict, clean: list[Prompt], attacked: list[Prompt], vectors, path: Path, steps: int,
                   progress: bool):  # fmt: skip
    """Record the plain and attacked prompts on the edited model (None: unedited); return the store."""
    with applied(pipe, load_edit(edit) if edit else Edit("unedited")):
        record(pipe, PromptSet(clean + attacked), path, steps=steps, progress=progress,
               slots=Slots(int(res["token_id"]), res["slot_texts"], vectors))  # fmt: skip
    return open_store(path)


def _concept_columns(pipe, concept: str, clean: list[Prompt], path: Path, k: float, t_hat: int, steps: int, progress: bool):
    """Record the unedited model on the concept's calibration pairs and the plain prompts; return
    (its store, the unedited weights, which scale every run alike, the concept neurons)."""
    pos, neg = calibration(concept)
    record(pipe, PromptSet(list(pos) + list(neg) + clean), path, steps=steps, progress=progress)
    unedited = open_store(path)
    weights = weights_of(pipe, unedited)
    masks = concept_masks(unedited, weights, pos[0].set, neg[0].set, k=k, t_hat=t_hat)
    return unedited, weights, concept_neurons(masks)


def _views(unedited, edited, weights, concept_cols):
    """(sensitivity summary per site, concept-neuron activity per run) of one edited store."""
    sites = list(concept_cols.children)
    summary = sensitivity_summary(sensitivity(edited, edited, weights, "clean", "attacked", sites=sites), concept_cols)
    runs = {"unedited": (unedited, "clean"), "edited": (edited, "clean"), "attacked": (edited, "attacked")}
    return summary, concept_activity(runs, weights, concept_cols)


def run_reactivation(edit: str | Path, attack: str | Path, concept: str = "striped", work: str | Path = "stores/reactivation",
                     out: str | Path | None = "docs/reactivation.md", k: float = 2.0, t_hat: int = 10, steps: int = 25,
                     progress: bool = False, model: str = "toy", device: str = "cpu", dtype=None) -> dict:  # fmt: skip
    """Record the three runs under ``work`` (resumable: stores are extended, never redone), compute
    the sensitivity summary and the activity curves, write the markdown and figures; return them.
    ``model``: the checkpoint the edit and the attack were made on (any ``load_pipeline`` name)."""
    attack, work = Path(attack), Path(work)
    res, clean, attacked, vectors = _attack_run(attack)
    import torch

    pipe = load_pipeline(model, device=device, dtype=dtype or torch.float32)
    unedited, weights, concept_cols = _concept_columns(pipe, concept, clean, work / "unedited.zarr", k, t_hat, steps, progress)
    edited = _record_edited(pipe, edit, res, clean, attacked, vectors, work / "edited.zarr", steps, progress)
    summary, act = _views(unedited, edited, weights, concept_cols)
    result = {"summary": summary, "activity": act, "attack": res}
    if out is not None:
        write_markdown(Path(out), result, concept, edit, attack, k, t_hat)
    return result


def compare_reactivation(pipe, runs: dict[str, tuple[str | Path | None, str | Path]], concept: str = "striped",
                         work: str | Path = "stores/reactivation-compare", k: float = 2.0, t_hat: int = 10, steps: int = 25,
                         progress: bool = False) -> xr.Dataset:  # fmt: skip
    """The reactivation view for several erasers attacked on the same prompts (the P-ESD paper's
    ESD vs P-ESD comparison): ``runs`` maps a name to (edit folder, or None for the unedited model;
    a prompt attack's ``--out`` folder on it). Records the unedited model once (calibration pairs
    and the clean prompts) and each edited model on its clean and attacked prompts, under ``work``
    (resumable). Returns ``sensitivity`` (eraser, group) pooled over sites and ``activity``
    (eraser, run, step) of the concept neurons, which are found once on the unedited model."""
    from .plots import slug

    if not runs:
        raise ValueError("no attack runs to compare: give at least one (edit, attack folder)")
    work = Path(work)
    loaded, clean = {}, None
    for name, (edit, folder) in runs.items():
        res, prompts, attacked, vectors = _attack_run(Path(folder))
        if clean is not None and prompts != clean:
            raise ValueError(f"{folder} attacked other prompts than the first run: compare runs of one attack seed and n_per")
        clean = prompts
        loaded[name] = (edit, res, attacked, vectors)
    unedited, weights, concept_cols = _concept_columns(pipe, concept, clean, work / "unedited.zarr", k, t_hat, steps, progress)
    sens, act = [], []
    for i, (name, (edit, res, attacked, vectors)) in enumerate(loaded.items()):
        edited = _record_edited(pipe, edit, res, clean, attacked, vectors, work / f"run{i}-{slug(name)}.zarr", steps, progress)
        summary, activity = _views(unedited, edited, weights, concept_cols)
        sens.append(summary.sel(site="all"))
        act.append(activity)
    names = list(loaded)
    ds = xr.Dataset({"sensitivity": xr.concat(sens, "eraser").drop_vars("site"), "activity": xr.concat(act, "eraser")})
    ds = ds.assign_coords(eraser=names)
    ds["asr"] = ("eraser", [loaded[n][1]["asr"]["rate"] for n in names])
    ds["pre_asr"] = ("eraser", [loaded[n][1]["pre_asr"]["rate"] for n in names])
    ds.attrs.update(concept=concept, k=k, t_hat=t_hat, attack=next(iter(loaded.values()))[1]["attack"])
    return ds


def compare_section(ds: xr.Dataset, figures: Path) -> list[str]:
    """Markdown lines (table, sentences, figures) of ``compare_reactivation``'s result, or of
    several seeds' results concatenated along ``seed`` (then mean ± sd over seeds)."""
    from .plots import reactivation_bars, sensitivity_compare, write_images

    figs = write_images([(f"concept-neuron sensitivity by eraser {ds.attrs['concept']}", sensitivity_compare(ds)),
                         (f"concept-neuron activity by eraser {ds.attrs['concept']}", reactivation_bars(ds))], figures)  # fmt: skip
    seeded = "seed" in ds.dims
    mean = ds.mean("seed") if seeded else ds
    sd = ds.std("seed") if seeded else xr.zeros_like(ds)
    act, act_sd = mean["activity"].mean("step"), ds["activity"].mean("step").std("seed") if seeded else None

    def v(x: xr.DataArray, dx: xr.DataArray | None, fmt: str) -> str:
        return f"{float(x):{fmt}}" + (f" ± {float(dx):{fmt.lstrip('+')}}" if seeded and dx is not None else "")

    lines = [
        "| eraser | ASR | shown without attack | sensitivity: concept neurons | other neurons | activity unedited | "
        "edited | attacked |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in ds["eraser"].values:
        cells = [v(mean["asr"].sel(eraser=e), sd["asr"].sel(eraser=e), ".1%"),
                 v(mean["pre_asr"].sel(eraser=e), sd["pre_asr"].sel(eraser=e), ".1%"),
                 *(v(mean["sensitivity"].sel(eraser=e, group=g), sd["sensitivity"].sel(eraser=e, group=g), "+.3f")
                   for g in ("concept", "other")),
                 *(v(act.sel(eraser=e, run=r), act_sd.sel(eraser=e, run=r) if seeded else None, ".3f")
                   for r in ("unedited", "edited", "attacked"))]  # fmt: skip
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    note = [f"Mean ± sd over seeds {ds['seed'].values.tolist()}; the sentences read the means.", ""] if seeded else []
    return [*note, *lines, "", *reactivation_claims(mean), "", *[f"![{t}](figures/{n})" for t, n in figs.items()]]


def _compare(c: float, o: float, tol: float = 0.005) -> str:
    """'more sensitive' / 'less sensitive' / 'about as sensitive' (within ``tol`` site means)."""
    return "about as sensitive" if abs(c - o) < tol else "more sensitive" if c > o else "less sensitive"


def _verdict(a: float, b: float, tol: float = 0.005) -> str:
    """Does a < b hold, beyond ``tol`` site means?"""
    return f"too close to call (within {tol:g})" if abs(a - b) < tol else "holds here" if a < b else "does not hold here"


def reactivation_claims(ds: xr.Dataset) -> list[str]:
    """Sentences from ``compare_reactivation``'s numbers against the P-ESD paper's story (its Figs.
    2, 3, 5): an eraser deactivates the concept neurons (edited below unedited), an attack wakes them
    (attacked above edited, concept neurons more sensitive than the others)."""
    mean = ds["activity"].mean("step")
    out = []
    for e in ds["eraser"].values:
        if e == "unedited":
            continue
        u, d, a = (float(mean.sel(eraser=e, run=r)) for r in ("unedited", "edited", "attacked"))
        c, o = (float(ds["sensitivity"].sel(eraser=e, group=g)) for g in ("concept", "other"))
        back = (a - d) / (u - d) if u - d > 1e-9 else float("nan")
        out.append(f"- {e}: the edit lowers the concept neurons' activity by {1 - d / u:.1%}; the attack gives back "
                   f"{back:.1%} of that; concept neurons {c:+.3f} against the others {o:+.3f} "
                   f"({_compare(c, o)}); ASR {float(ds['asr'].sel(eraser=e)):.1%}.")  # fmt: skip
    names = list(ds["eraser"].values)
    esd = next((e for e in names if e.startswith(ESD)), None)
    for masked in (e for e in names if e.startswith(PESD)):
        if esd is None:
            break
        sm, se = (float(ds["sensitivity"].sel(eraser=x, group="concept")) for x in (masked, esd))
        out.append(f"- The P-ESD paper: a learned mask leaves the concept neurons less sensitive to the attack than ESD "
                   f"does. {masked} {sm:+.3f} against {esd} {se:+.3f}: {_verdict(sm, se)} (the sds over seeds are "
                   "in the table).")  # fmt: skip
    return out


def write_markdown(out: Path, result: dict, concept: str, edit, attack, k: float, t_hat: int) -> Path:
    from .plots import activity_curves, sensitivity_bars, write_images

    summary, act, res = result["summary"], result["activity"], result["attack"]
    figs = write_images([(f"sensitivity {concept} {res['attack']}", sensitivity_bars(summary)),
                         (f"activity {concept} {res['attack']}", activity_curves(act))], out.parent / "figures")  # fmt: skip
    c, o = float(summary.sel(site="all", group="concept")), float(summary.sel(site="all", group="other"))
    mean = act.mean("step")
    lines = [
        f"# Reactivation: '{concept}' under {res['attack']} on {res['edit']}",
        "",
        f"Written by `workbench reactivation --edit {edit} --attack {attack}`. Concept neurons: the columns of "
        f"ConceptPrune's skilled masks (k = {k:g} %, t-hat = {t_hat}) on the unedited model. Sensitivity: the change "
        "of each neuron's Wanda-scaled activation from the plain to the attacked prompts on the edited model, in units "
        "of its site's mean activation, averaged over every UNet call (definition: workbench/analysis/sensitivity.py).",
        "",
        f"- attack: ASR {res['asr']['rate']:.1%} ({res['asr']['k']}/{res['asr']['n']}; pre-ASR {res['pre_asr']['rate']:.1%}, "
        f"post-ASR {res['post_asr']['rate']:.1%}); attack loss {res.get('loss_before', float('nan')):.4f} (plain) -> "
        f"{res.get('loss_after', float('nan')):.4f} (attacked)",
        f"- mean sensitivity, all sites: concept neurons {c:+.3f}, other neurons {o:+.3f} "
        f"({'concept neurons move more' if abs(c) > abs(o) else 'concept neurons do not move more than the others'})",
        "- concept-neuron activity, mean over steps: "
        + ", ".join(f"{r} {float(mean.sel(run=r)):.3f}" for r in act["run"].values),
        "",
        "| site | concept neurons | other neurons |",
        "| --- | --- | --- |",
        *[
            f"| {s} | {float(summary.sel(site=s, group='concept')):+.3f} | {float(summary.sel(site=s, group='other')):+.3f} |"
            for s in summary["site"].values
        ],  # fmt: skip
        "",
        *[f"![{t}](figures/{n})" for t, n in figs.items()],
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    return out
