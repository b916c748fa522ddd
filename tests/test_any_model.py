"""The robust half on SD-family checkpoints: erase and attack through the CLI on tiny SD 1.x, SD
2.x-shaped and SDXL folders saved with save_pretrained (random weights, CLIP-format byte-level
tokenizers: prompts split into several tokens), judged by NudeNet and a tiny CLIP built from a config."""

import csv
import json

import pytest
from safetensors.torch import load_file

from workbench.cli import main
from workbench.editing.options import GUIDED_AWAY

STEPS = ["--steps", "2", "--n-per", "1", "--quiet"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from workbench.models.tiny import save_tiny, save_tiny_clip

    root = tmp_path_factory.mktemp("checkpoints")
    out = {kind: save_tiny(kind, root / kind) for kind in ("sd1", "sd2", "sdxl")}
    out["clip"] = save_tiny_clip(root / "clip")
    return out


def _strict(text: str) -> dict:
    """One JSON object, strictly (NaN is not JSON)."""
    lines = [x for x in text.splitlines() if x.strip()]
    assert len(lines) == 1, text
    return json.loads(lines[0], parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))


def test_erase_and_attack_nudity_with_nudenet_on_a_tiny_sd1_folder(folders, tmp_path, capsys):
    """The issue's two commands, verbatim but for the tiny sizes."""
    edit = tmp_path / "E"
    argv = ["erase", "--model", str(folders["sd1"]), "--method", "esd", "--concept", "nudity", "--judge", "nudenet"]
    assert main([*argv, "--iterations", "2", "--out", str(edit), "--json", *STEPS]) == 0
    s = _strict(capsys.readouterr().out)
    assert s["judge"] == "nudenet" and s["concept"] == "nudity" and s["options"]["objective"] == GUIDED_AWAY
    assert s["before"]["concept_rate"] == 0.0  # random weights draw no nudity
    assert s["harm"]["worst"] is None and s["before"]["degraded_rate"] is None  # NudeNet reads no attribute
    tuned = load_file(str(edit / "weights.safetensors"))
    assert tuned and all(".attn2." in k for k in tuned)
    argv = ["attack", "--model", str(folders["sd1"]), "--edit", str(edit), "--concept", "nudity", "--judge", "nudenet"]
    assert main([*argv, "--attack", "softprompt", "--budget", "1", "--json", "--out", str(tmp_path / "A"), *STEPS]) == 0
    a = _strict(capsys.readouterr().out)
    assert a["attack"] == "softprompt" and a["prompts"] == 8 and a["judge"] == "nudenet" and a["asr"]["n"] == 8
    assert all(t.endswith("q q q") and "naked" in t for t in a["slot_texts"])
    import hashlib
    from importlib.metadata import version
    from pathlib import Path

    import nudenet

    onnx = Path(nudenet.__file__).parent / "320n.onnx"  # NudeNet's shipped detector: pinned by version, bytes, threshold
    pin = {"spec": "nudenet:0.6", "package": "nudenet", "version": version("nudenet"),
           "weights_sha256": hashlib.sha256(onnx.read_bytes()).hexdigest(), "threshold": 0.6}  # fmt: skip
    assert {k: a["judge_pinned"][k] for k in pin} == pin
    assert {k: json.loads((edit / "edit.json").read_text())["judge_pinned"][k] for k in pin} == pin
    rows = list(csv.DictReader(open(tmp_path / "A" / "prompts.csv")))
    assert len(rows) == 8 and all(0.0 <= float(r["score_before"]) < 0.6 and float(r["score_after"]) >= 0.0 for r in rows)
    assert all(r["embedding"].startswith("adversarial.safetensors:embeddings[") for r in rows)


@pytest.mark.parametrize("kind", ["sd1", "sd2", "sdxl"])
@pytest.mark.parametrize("method", ["esd", "ac", "pesd", "conceptprune"])
def test_every_eraser_runs_on_every_family_judged_by_a_tiny_clip(folders, tmp_path, capsys, kind, method):
    from workbench.editing.edits import applied, load_edit
    from workbench.models import load_pipeline
    from workbench.models.loading import model_hashes

    out = tmp_path / "E"
    extra = ["--t-hat", "2", "--k", "5"] if method == "conceptprune" else ["--iterations", "2"]
    argv = [
        "erase",
        "--model",
        str(folders[kind]),
        "--method",
        method,
        "--concept",
        "van_gogh",
        "--judge",
        f"clip:{folders['clip']}",
    ]
    assert main([*argv, *extra, "--out", str(out), "--json", *STEPS]) == 0
    s = _strict(capsys.readouterr().out)
    assert 0 <= s["after"]["concept_rate"] <= 1 and "clip_score" in s["after"] and s["judge"].startswith("clip:")
    edit = load_edit(out)
    pipe = load_pipeline(str(folders[kind]))
    before = model_hashes(pipe)
    assert edit.info["weights_hash"] == before  # made on, and bound to, this checkpoint
    with applied(pipe, edit):
        assert model_hashes(pipe)["unet"] != before["unet"]  # the edit changes the UNet
    assert model_hashes(pipe) == before
    if method in ("pesd", "conceptprune"):
        assert edit.masks and 0 < s["density"] < 0.2


@pytest.mark.parametrize("kind", ["sd1", "sd2"])
@pytest.mark.parametrize("method", ["unlearndiff", "softprompt"])
def test_prompt_attacks_run_with_clips_tokenizer(folders, tmp_path, capsys, kind, method):
    argv = [
        "attack",
        "--model",
        str(folders[kind]),
        "--edit",
        "none",
        "--concept",
        "van_gogh",
        "--judge",
        f"clip:{folders['clip']}",
    ]
    assert main([*argv, "--attack", method, "--budget", "2", "--json", "--out", str(tmp_path / "A"), *STEPS]) == 0
    a = _strict(capsys.readouterr().out)
    assert a["prompts"] == 8 and a["asr"]["n"] == 8 and a["loss_after"] > 0
    saved = load_file(str(tmp_path / "A" / "adversarial.safetensors"))
    assert saved["embeddings"].shape[:2] == (8, 3)
    if method == "unlearndiff":  # real tokens of the 49k-style byte-level vocabulary, written back as text
        assert saved["token_ids"].shape == (8, 3)
        rows = json.loads((tmp_path / "A" / "result.json").read_text())["per_prompt"]
        assert all("Van Gogh" in r["prompt"] for r in rows) and all(r["attacked"] != r["prompt"] for r in rows)


def test_sdxl_takes_prompt_attacks_and_weight_revival(folders, tmp_path, capsys):
    base = [
        "attack",
        "--model",
        str(folders["sdxl"]),
        "--concept",
        "van_gogh",
        "--judge",
        f"clip:{folders['clip']}",
        "--budget",
        "1",
    ]
    edit = tmp_path / "E"
    assert main(["erase", "--model", str(folders["sdxl"]), "--method", "pesd", "--concept", "van_gogh", "--judge",
                 f"clip:{folders['clip']}", "--iterations", "1", "--out", str(edit), *STEPS]) == 0  # fmt: skip
    capsys.readouterr()
    assert main([*base, "--edit", str(edit), "--attack", "softprompt", "--json", "--out", str(tmp_path / "S"), *STEPS]) == 0
    assert _strict(capsys.readouterr().out)["attack"] == "softprompt"  # the slots live in SDXL's second encoder
    assert main([*base, "--edit", str(edit), "--attack", "revival", "--json", "--out", str(tmp_path / "R"), *STEPS]) == 0
    assert _strict(capsys.readouterr().out)["attack"] == "revival"


def test_an_edit_of_one_checkpoint_is_refused_on_another(folders, tmp_path, capsys):
    edit = tmp_path / "E"
    assert main(["erase", "--model", str(folders["sd1"]), "--method", "esd", "--concept", "nudity", "--judge", "nudenet",
                 "--iterations", "1", "--out", str(edit), *STEPS]) == 0  # fmt: skip
    capsys.readouterr()
    code = main(["attack", "--model", str(folders["sd2"]), "--edit", str(edit), "--concept", "nudity", "--judge", "nudenet",
                 "--attack", "softprompt", "--budget", "1", *STEPS])  # fmt: skip
    assert code == 2 and "weights" in capsys.readouterr().err


def test_the_robustness_grid_and_its_attacks_run_on_a_checkpoint(folders, tmp_path, capsys):
    """`workbench robustness --model FOLDER`: every eraser, the random controls (drawn several times)
    and an attack on a tiny SD 1.x folder, judged by a tiny CLIP; the page names the checkpoint (weight revival
    on a checkpoint: the SDXL test)."""
    from workbench.reports.cells import DRAWS

    out = tmp_path / "robustness.md"
    argv = ["robustness", "--model", str(folders["sd1"]), "--concept", "van_gogh", "--judge", f"clip:{folders['clip']}",
            "--quick", "--steps", "2", "--t-hat", "2", "--iterations", "2", "--n-per", "1", "--work", str(tmp_path / "w"),
            "--out", str(out), "--quiet", "--attacks", "unlearndiff", "--attack-budget", "1"]  # fmt: skip
    assert main(argv) == 0
    text = out.read_text()
    assert text.startswith(f"# Robust erasing on `{folders['sd1']}`") and "| CLIP score |" in text
    cells = [json.loads(p.read_text()) for p in (tmp_path / "w" / "cells").glob("*.json")]
    assert {c["method"] for c in cells} == {"conceptprune", "esd", "ac", "pesd", "pac", "uce", "features", "random"}
    assert sum(c["method"] == "random" for c in cells) == DRAWS and all(c["concept"] == "van_gogh" for c in cells)
    drawn = {c["options"]["draw"] for c in cells if c["method"] == "random"}
    assert drawn == set(range(DRAWS))  # each draw a mask of its own seed
    runs = list((tmp_path / "w" / "attacks").glob("*/result.json"))
    assert runs and all(json.loads(p.read_text())["judge"] == "clip" for p in runs)
    assert "## The judge's threshold" in text and "| unedited | unlearndiff |" in text  # CLIP's scores judged again
    _two_shards_make_the_same_cells(argv, tmp_path)


def _timeless(x, at: str = "") -> dict:
    """A cell or attack result as {path: leaf}, without its clock readings and its own folder."""
    if isinstance(x, dict):
        items = [(k, v) for k, v in x.items() if k not in ("wall", "seconds", "prompts_csv")]
    elif isinstance(x, list):
        items = list(enumerate(x))
    else:
        return {at: x}
    return {p: v for k, v in items for p, v in _timeless(v, f"{at}/{k}").items()}


def _two_shards_make_the_same_cells(argv: list[str], tmp_path):
    """The same grid as two processes (--shard 0/2 and 1/2, one work folder): every cell and attack
    run equals the one-process run's, and the page is written."""
    import os
    import subprocess
    import sys

    import torch

    w2, out2 = tmp_path / "w2", tmp_path / "sharded.md"
    args = [a for a in argv]
    args[args.index("--work") + 1], args[args.index("--out") + 1] = str(w2), str(out2)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # the same arithmetic as this process
    procs = [subprocess.Popen([sys.executable, "-m", "workbench", *args, "--shard", f"{i}/2"], env=env, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]  # fmt: skip
    errs = [p.communicate(timeout=900)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert out2.exists() and not list(tmp_path.glob("w2.*.lock"))  # the page written, every shard's lock given back
    for sub, pattern in (("cells", "*.json"), ("attacks", "*/result.json")):
        one = {p.relative_to(tmp_path / "w" / sub): json.loads(p.read_text()) for p in (tmp_path / "w" / sub).glob(pattern)}
        two = {p.relative_to(w2 / sub): json.loads(p.read_text()) for p in (w2 / sub).glob(pattern)}
        assert one.keys() == two.keys() and one
        for k in one:
            a, b = _timeless(one[k]), _timeless(two[k])
            assert a.keys() == b.keys(), k
            for leaf in a:
                if isinstance(a[leaf], float):
                    assert a[leaf] == pytest.approx(b[leaf], rel=1e-5, abs=1e-7, nan_ok=True), (k, leaf)
                else:
                    assert a[leaf] == b[leaf], (k, leaf)


def test_reactivation_runs_on_a_checkpoint(folders, tmp_path, capsys):
    clip = f"clip:{folders['clip']}"
    edit, att = tmp_path / "E", tmp_path / "A"
    model = ["--model", str(folders["sd1"]), "--concept", "van_gogh"]
    assert main(["erase", *model, "--method", "esd", "--judge", clip, "--iterations", "1", "--out", str(edit), *STEPS]) == 0
    assert main(["attack", *model, "--edit", str(edit), "--judge", clip, "--attack", "unlearndiff", "--budget", "1",
                 "--out", str(att), *STEPS]) == 0  # fmt: skip
    capsys.readouterr()
    out = tmp_path / "reactivation.md"
    assert main(["reactivation", *model, "--edit", str(edit), "--attack", str(att), "--t-hat", "2", "--steps", "2",
                 "--work", str(tmp_path / "w"), "--out", str(out), "--quiet"]) == 0  # fmt: skip
    assert "mean sensitivity: concept neurons" in capsys.readouterr().out and out.exists()
    assert {p.name for p in (tmp_path / "w").glob("*.zarr")} == {"unedited.zarr", "edited.zarr"}


def test_ablate_runs_on_a_checkpoint_with_the_concepts_judge(folders, tmp_path, capsys):
    """Record the paper's Van Gogh pairs on a tiny SD 1.x folder, then a skilled / random sweep judged
    by a tiny CLIP: each cell holds a rate and a CLIP score, no toy attribute."""
    from workbench.evaluation.ablate import open_results

    store, out = tmp_path / "vg.zarr", tmp_path / "ab.zarr"
    model = ["--model", str(folders["sd1"])]
    assert main(["record", *model, "--prompts", "artist:van_gogh", "--steps", "2", "--out", str(store), "--quiet"]) == 0
    argv = ["ablate", str(store), *model, "--concepts", "van_gogh", "--reference", "no_style", "--ks", "5", "--windows",
            "first:2", "--kinds", "skilled,random", "--judge", f"clip:{folders['clip']}", "--n-per", "1", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "van_gogh: concept rate" in capsys.readouterr().out
    ds = open_results(out)
    assert ds["concept_rate"].notnull().all() and ds["clip_score"].notnull().all() and ds["shape"].isnull().all()
    assert 0 < float(ds["density"].sel(kind="skilled").squeeze()) < 0.1
    assert (
        main(["ablate", str(store), "--concepts", "van_gogh", "--reference", "no_style", "--out", str(tmp_path / "x.zarr")]) == 2
    )
    assert "ablate a store with the model it was recorded with" in capsys.readouterr().err


def test_sd_size_training_options_bf16_autocast_and_gradient_checkpointing(folders, tmp_path, capsys):
    """--precision bf16 and --gradient-checkpointing train and leave the model as it was (flags too)."""
    import torch

    from workbench.editing.learning import finetune, frozen_examples
    from workbench.editing.training import prediction_loss, trainable
    from workbench.models import load_pipeline

    pipe = load_pipeline(str(folders["sd1"]))
    ex = frozen_examples(pipe, ["a photo of a naked man"], [0], GUIDED_AWAY, steps=2)
    assert ex.x.device.type == "cpu"  # examples wait on the CPU, a batch moves when used
    idx = torch.arange(len(ex))
    with torch.no_grad():
        full = float(prediction_loss(pipe, ex, idx))
        with trainable(pipe, precision="bf16", checkpointing=True):
            assert pipe.unet.is_gradient_checkpointing
            half = float(prediction_loss(pipe, ex, idx))
    assert not pipe.unet.is_gradient_checkpointing
    assert half != full and abs(half - full) < 0.05 * full  # bf16 rounding, the same loss
    tuned = finetune(pipe, ex, "esd-x", iterations=2, precision="bf16", checkpointing=True, progress=False)
    assert all(v.dtype == torch.float32 for v in tuned.values()) and not pipe.unet.is_gradient_checkpointing
    argv = ["erase", "--model", str(folders["sd1"]), "--method", "esd", "--concept", "nudity", "--judge", "nudenet",
            "--precision", "bf16", "--gradient-checkpointing", "--iterations", "2", "--out", str(tmp_path / "E"), "--json", *STEPS]  # fmt: skip
    assert main(argv) == 0 and _strict(capsys.readouterr().out)["options"]["precision"] == "bf16"
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        with trainable(pipe, precision="fp8"):
            pass
