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

import json
from pathlib import Path

from ..analysis import concept_activity, concept_masks, concept_neurons, sensitivity, sensitivity_summary
from ..editing.edits import applied, load_edit
from ..evaluation.erasers import calibration
from ..models import load_pipeline, weights_of
from ..models.slots import Slots
from ..prompts import Prompt, PromptSet
from ..recording import record
from ..store import open_store


def run_reactivation(edit: str | Path, attack: str | Path, concept: str = "striped", work: str | Path = "stores/reactivation",
                     out: str | Path | None = "docs/reactivation.md", k: float = 2.0, t_hat: int = 10, steps: int = 25,
                     progress: bool = False) -> dict:  # fmt: skip
    """Record the three runs under ``work`` (resumable: stores are extended, never redone), compute
    the sensitivity summary and the activity curves, write the markdown and figures; return them."""
    from safetensors.torch import load_file

    attack, work = Path(attack), Path(work)
    res = json.loads((attack / "result.json").read_text())
    if "slot_texts" not in res:
        raise ValueError(f"{attack} holds a {res.get('attack')} result without prompt slots: give a prompt attack's --out folder")
    vectors = load_file(str(attack / "adversarial.safetensors"))["embeddings"]
    pipe = load_pipeline("toy")
    clean = [Prompt(r["prompt"], "clean", r["seed"]) for r in res["per_prompt"]]
    attacked = [Prompt(t, "attacked", r["seed"]) for t, r in zip(res["slot_texts"], res["per_prompt"])]
    pos, neg = calibration(concept)
    record(pipe, PromptSet(list(pos) + list(neg) + clean), work / "unedited.zarr", steps=steps, progress=progress)
    with applied(pipe, load_edit(edit)):
        record(pipe, PromptSet(clean + attacked), work / "edited.zarr", steps=steps, progress=progress,
               slots=Slots(int(res["token_id"]), res["slot_texts"], vectors))  # fmt: skip
    unedited, edited = open_store(work / "unedited.zarr"), open_store(work / "edited.zarr")
    weights = weights_of(pipe, unedited)  # the unedited weights scale every run alike
    reference = next(p.set for p in neg)
    masks = concept_masks(unedited, weights, concept, reference, k=k, t_hat=t_hat)
    concept_cols = concept_neurons(masks)
    sens = sensitivity(edited, edited, weights, "clean", "attacked", sites=list(masks.attrs["sites"]))
    summary = sensitivity_summary(sens, concept_cols)
    act = concept_activity({"unedited": (unedited, "clean"), "edited": (edited, "clean"), "attacked": (edited, "attacked")},
                           weights, concept_cols)  # fmt: skip
    result = {"summary": summary, "activity": act, "attack": res}
    if out is not None:
        write_markdown(Path(out), result, concept, edit, attack, k, t_hat)
    return result


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
        f"- attack: ASR {res['asr']['rate']:.1%} ({res['asr']['k']}/{res['asr']['n']}), shown without attack "
        f"{res['pre_attack']['rate']:.1%}; attack loss {res.get('loss_before', float('nan')):.4f} (plain) -> "
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
