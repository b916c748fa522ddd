"""The bad inputs of docs/errors.md: each case's command, the message it must give, and the damage
done first. Shared by tests/test_errors.py (which runs them) and docs/make_errors.py (which writes
the page from the messages they really produce). Messages hold no bytes or numbers that another
machine computes differently, so the page is the same wherever it is generated."""

from __future__ import annotations

import contextlib
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zarr

DOC = Path(__file__).parents[2] / "docs" / "errors.md"
STEPS = 3


@dataclass
class Case:
    key: str
    what: str  # the bad input, as a user would describe it
    argv: list[str]  # {store}, {tmp}, {pairs}, ... are filled in per run
    expect: str  # a regex the message must match
    absent: str | None = None  # a path that must not exist afterwards (nothing half-made)
    setup: list[str] = field(default_factory=list)  # names of damage to do first (see damaged())


MASKS = ["masks", "{damaged}", "--target", "striped", "--reference", "plain", "--t-hat", "2"]
ATTACK = ["attack", "--edit", "{edit}", "--concept", "striped", "--attack", "softprompt", "--budget", "1", "--n-per", "1",
          "--steps", "2", "--out", "{tmp}/attack", "--quiet"]  # fmt: skip

CASES = [
    Case("site", "unknown layer pattern", ["record", "--prompts", "{pairs}", "--sites", "nope", "--steps", "2", "--out", "{tmp}/a.zarr"],
         r"site pattern 'nope' matches no layer.*workbench sites", absent="{tmp}/a.zarr"),
    Case("empty", "empty prompt file", ["record", "--prompts", "{tmp}/empty.txt", "--out", "{tmp}/b.zarr"], r"holds no prompts: write one prompt a line"),
    Case("set", "unknown named prompt set", ["record", "--prompts", "texture:wavy", "--out", "{tmp}/c.zarr"], r"unknown texture 'wavy': choose one of"),
    Case("steps", "zero denoising steps", ["record", "--prompts", "{pairs}", "--steps", "0", "--out", "{tmp}/d.zarr"],
         r"steps=0: give at least 1 denoising step", absent="{tmp}/d.zarr"),
    Case("outfile", "--out is an existing regular file", ["record", "--prompts", "{pairs}", "--steps", "2", "--out", "{tmp}/empty.txt"],
         r"is a file, not a store folder: choose another --out"),
    Case("extend", "extending a store with other settings", ["record", "--prompts", "{pairs}", "--steps", "4", "--out", "{store}"],
         r"was recorded with other settings \(steps: store has 3, now 4\)"),
    Case("k", "k out of range", ["masks", "{store}", "--target", "striped", "--reference", "plain", "--k", "0"], r"k=0.0 is out of range"),
    Case("that", "t-hat beyond the recorded steps", ["masks", "{store}", "--target", "striped", "--reference", "plain", "--t-hat", "9"],
         r"t_hat=9 is beyond the recorded steps: this store has 3 denoiser calls per prompt, use 1..3"),
    Case("window", "unknown step window", ["masks", "{store}", "--target", "striped", "--reference", "plain", "--window", "foo"],
         r"unknown window 'foo': use 'first:T', 'all' or 'last:N'"),
    Case("target", "a target set the store does not hold", ["masks", "{store}", "--target", "dotted", "--reference", "plain"],
         r"prompt set 'dotted' is not in this store"),
    Case("weights", "masks with a model whose weights differ from the store's", ["masks", "{store}", "--target", "striped", "--reference", "plain", "--model", "{other_model}"],
         r"recorded with other weights than this model's \(unet: store \w+, model \w+\).*--allow-other-weights"),
    Case("model", "a model folder that is not there", ["masks", "{store}", "--target", "striped", "--reference", "plain", "--model", "{tmp}/no-model"],
         r"there is no model folder .*save_pretrained"),
    Case("half", "a half-written store", MASKS, r"is half-written: 1 of 4 prompts are not recorded", setup=["undone"]),
    Case("deleted", "a chunk file deleted from a store", MASKS,
         r"is damaged: 1 chunk\(s\) of recorded prompts are missing.*info --check", setup=["delete"]),
    Case("deleted-info", "the same, summarised", ["info", "{damaged}"],
         r"is damaged: 1 chunk\(s\) of recorded prompts are missing .*run `workbench info --check", setup=["delete"]),
    Case("deleted-check", "the same, checked", ["info", "{damaged}", "--check"], r"is damaged: 1 chunk\(s\) of recorded prompts are missing: [\w.]+/sumsq prompts 0-3", setup=["delete"]),
    Case("truncated", "a truncated chunk of the per-set sums masks read", MASKS,
         r"a chunk of the store could not be decoded \(\w+: [\w ]+\): run `workbench info --check", setup=["truncate-reduction"]),
    Case("lost-reduction", "a file of the per-set sums deleted", MASKS,
         r"sums for [\w.]+ hold NaN: its per-set reductions \(rebuild them: `workbench reduce STORE`\) are damaged", setup=["delete-reduction"]),
    Case("lost-reduction-check", "the same, checked", ["info", "{damaged}", "--check"],
         r"array reductions/[\w.]+/sumsq(_unit)? is missing its data near row 0; rebuild them with `workbench reduce STORE`", setup=["delete-reduction"]),
    Case("lost-sets", "the per-set sums without their set names", MASKS,
         r"per-set reductions are incomplete \(1 array\(s\) missing, first: reductions/prompt_set\): rebuild them with `workbench reduce", setup=["drop-prompt-set"]),
    Case("lost-sets-check", "the same, checked", ["info", "{damaged}", "--check"],
         r"per-set reductions are incomplete .*workbench reduce", setup=["drop-prompt-set"]),
    Case("truncated-check", "the same, checked", ["info", "{damaged}", "--check"], r"array [\w.]+/sumsq has a corrupt chunk near prompt 0", setup=["truncate"]),
    Case("shard", "a shard index out of range", ["record", "--prompts", "{pairs}", "--steps", "2", "--shard", "4/4", "--out", "{tmp}/e.zarr"],
         r"shard 4/4 is out of range: the index runs from 0 to N-1", absent="{tmp}/e.zarr"),
    Case("noprompts", "record without prompts", ["record", "--out", "{tmp}/f.zarr"], r"give --prompts SET .*--finalise STORE", absent="{tmp}/f.zarr"),
    Case("finalise", "finalising a store with prompts missing", ["record", "--finalise", "{damaged}"],
         r"1 of 4 prompts are not recorded yet \(first: row 1\): run the same record command again", setup=["undone"]),
    Case("erase", "erasing a concept that is neither a name nor a file", ["erase", "--method", "esd", "--concept", "plain", "--out", "{tmp}/g"],
         r"unknown concept 'plain': give a concept file \(.toml, docs/concepts.md\) or one of: van_gogh, .*striped", absent="{tmp}/g"),
    Case("concept-file", "a concept file without a judge", ["erase", "--method", "esd", "--concept", "{tmp}/nojudge.toml", "--out", "{tmp}/h"],
         r"concept file .*nojudge.toml lacks judge: a concept needs name, target, anchor and judge", absent="{tmp}/h"),
    Case("judge", "an unknown judge", ["erase", "--method", "esd", "--concept", "striped", "--judge", "oracle", "--iterations", "1", "--steps", "2", "--n-per", "1", "--out", "{tmp}/i", "--quiet"],
         r"unknown judge 'oracle': use one of toy, nudenet, clip, classifier"),
    Case("eraser-option", "an option the eraser does not take", ["erase", "--method", "esd", "--tune", "esd-x", "--concept", "striped", "--out", "{tmp}/o"],
         r"esd takes no --tune: its options are --batch, --eta, --examples, --group, --iterations, --lr, --preserve", absent="{tmp}/o"),
    Case("twice", "one concept named twice in a list", ["erase", "--method", "uce", "--concept", "striped,striped", "--out", "{tmp}/p"],
         r"concepts striped,striped: a concept is named twice; name each once", absent="{tmp}/p"),
    Case("attack-several", "attacking several concepts at once", ["attack", "--attack", "softprompt", "--edit", "none", "--concept", "striped,dotted", "--out", "{tmp}/q"],
         r"an attack takes one concept at a time \(--concept striped, then the others\)", absent="{tmp}/q"),
    Case("toy-judge", "the toy judge on a concept of another world", ["erase", "--method", "esd", "--concept", "nudity", "--judge", "toy", "--iterations", "1", "--steps", "2", "--n-per", "1", "--out", "{tmp}/j", "--quiet"],
         r"the toy judge reads toy concepts only, not 'nudity'"),
    Case("clip-weights", "a CLIP judge whose weights are not on the machine", ["erase", "--method", "esd", "--concept", "van_gogh", "--judge", "clip:{tmp}/no-clip", "--iterations", "1", "--steps", "2", "--n-per", "1", "--out", "{tmp}/k", "--quiet"],
         r"CLIP model .*no-clip' is neither a local folder nor in the Hugging Face cache: download it once"),
    Case("edit-masks", "an edit folder whose masks file was deleted", ATTACK,
         r"edit/masks.safetensors is missing: this conceptprune edit needs it; make the edit again", absent="{tmp}/attack", setup=["edit-delete"]),
    Case("edit-cut", "an edit folder whose masks file was cut short", ATTACK,
         r"edit/masks.safetensors is damaged \(its checksum is not the one edit.json records\)", absent="{tmp}/attack", setup=["edit-truncate"]),
    Case("edit-json", "an edit folder whose edit.json is garbled", ATTACK,
         r"edit/edit.json is damaged \(not an edit's JSON: JSONDecodeError\): make the edit again", absent="{tmp}/attack", setup=["edit-garble"]),
    Case("url", "recording straight to object storage", ["record", "--prompts", "{pairs}", "--steps", "2", "--out", "s3://bucket/x.zarr"],
         r"recording writes a local folder .*workbench push STORE s3://bucket/x.zarr"),
    Case("nostore", "a path that holds no store", ["info", "{tmp}/nowhere.zarr"], r"is not a recording store \(no zarr.json\)"),
]  # fmt: skip


def make_world(toy, root: Path) -> dict:
    """A 2+2 prompt store (target 'striped', reference 'plain', paired by line), a toy copy with
    other weights, and a ConceptPrune edit folder of it."""
    from workbench.cli import main
    from workbench.editing import Edit, export_pruned
    from workbench.models import model_hashes, module_of, select

    pairs = root / "pairs.txt"
    pairs.write_text(
        "striped\ta red circle with stripes\nstriped\ta blue cross with stripes\nplain\ta red circle\nplain\ta blue cross\n"
    )
    store = root / "store.zarr"
    assert main(["record", "--prompts", str(pairs), "--steps", str(STEPS), "--out", str(store), "--quiet"]) == 0
    site = select(toy, "ffn2")[0]
    eye = np.eye(*module_of(toy, site).weight.shape, dtype=bool)
    export_pruned(toy, {site.name: eye}, root / "other-model")
    edit = Edit("conceptprune", {"concept": "striped", "weights_hash": model_hashes(toy)}, masks={site.name: eye})
    edit.save(root / "edit")
    return {"root": root, "pairs": pairs, "store": store, "other_model": root / "other-model", "edit": root / "edit"}


def damaged(world: dict, how: str, tmp: Path) -> Path:
    """A copy of the world's store (or, for 'edit-*', of its edit folder) with one kind of damage."""
    if how.startswith("edit-"):
        path = tmp / "edit"
        shutil.copytree(world["edit"], path)
        masks, meta = path / "masks.safetensors", path / "edit.json"
        if how == "edit-delete":
            masks.unlink()
        elif how == "edit-truncate":
            masks.write_bytes(masks.read_bytes()[: masks.stat().st_size // 2])
        elif how == "edit-garble":
            meta.write_text(meta.read_text()[:-5])
        return path
    path = tmp / "damaged.zarr"
    shutil.copytree(world["store"], path)
    site = zarr.open_group(str(path), mode="r").attrs["sites"][0]
    chunk = sorted(p for p in (path / site / "sumsq").rglob("*") if p.is_file() and p.name != "zarr.json")[0]
    if how.endswith("-reduction"):  # the first set's shard of the per-set sums (the target, 'striped')
        chunk = sorted(p for p in (path / "reductions" / site / "sumsq").rglob("*") if p.is_file() and p.name != "zarr.json")[0]
        how = how.removesuffix("-reduction")
    if how == "undone":
        zarr.open_group(str(path), mode="r+")["done"][1] = False
    elif how == "delete":
        chunk.unlink()
    elif how == "truncate":
        chunk.write_bytes(chunk.read_bytes()[: len(chunk.read_bytes()) // 2])
    elif how == "drop-prompt-set":  # what a kill inside zarr's own group deletion used to leave
        shutil.rmtree(path / "reductions" / "prompt_set")
    return path


def run_case(case: Case, world: dict, tmp: Path) -> tuple[int, str]:
    """Run a case's command; its exit code and stderr, with the scratch paths named TMP and ROOT."""
    from workbench.cli import main

    (tmp / "empty.txt").write_text("# nothing here\n")
    (tmp / "nojudge.toml").write_text('name = "x"\ntarget = ["a red circle with stripes"]\nanchor = ["a red circle"]\n')
    fill = {k: str(world[k]) for k in ("store", "pairs", "other_model", "edit")} | {"tmp": str(tmp)}
    for how in case.setup:
        fill["edit" if how.startswith("edit-") else "damaged"] = str(damaged(world, how, tmp))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main([a.format(**fill) for a in case.argv])
    if case.absent:
        assert not Path(case.absent.format(**fill)).exists(), "a half-made output was left behind"
    return rc, err.getvalue().strip().replace(str(tmp), "TMP").replace(str(world["root"]), "ROOT")


def row(case: Case, message: str) -> str:
    cmd = "workbench " + " ".join(case.argv).replace("{", "").replace("}", "")
    return f"| {case.what} | `{cmd}` | {message.replace('|', chr(92) + '|')} |"


HEAD = """# Bad inputs and what they get

Generated by `python docs/make_errors.py` from the cases of `tests/helpers/error_cases.py`;
`tests/test_errors.py` runs every row and checks that its message is the one below, word for word.
TMP is the scratch folder; `pairs` a file of 2 target and 2 reference prompts; `store` a 3-step toy
recording of it; `damaged` a copy of it with one prompt un-flagged, a chunk deleted, a chunk cut in
half, or its per-set sums (reductions) with a file cut in half, a file deleted or their set names
gone; `other_model` the toy world with one weight matrix changed; `edit` a ConceptPrune edit folder
with its masks file deleted or cut short, or its edit.json garbled.

| bad input | command | what it gets (exit code 2, one line on stderr) |
| --- | --- | --- |
"""

TAIL = """
Not in the table because they need a machine in a given state:
- an `--out` in a read-only folder, or extending a read-only store (this machine runs as root, for
  whom permissions do not apply), gets `cannot use PATH (Permission denied): choose another path, or
  fix its permissions`, exit 2;
- a disk that fills up while recording (`tests/test_store.py` fills a small tmpfs) gets `no space left
  on the device while writing PATH: free some space (or choose another --out on a disk with room),
  then run the same command again: it resumes where it stopped`, exit 2; the rerun completes the
  store, equal to one recorded without the interruption.
"""


def render(messages: dict[str, str]) -> str:
    return HEAD + "\n".join(row(c, messages[c.key]) for c in CASES) + "\n" + TAIL


def messages_in(text: str) -> dict[str, str]:
    """The message of each case as the page states it (keyed by the row's position)."""
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`workbench " in line]
    return {c.key: r.rsplit(" | ", 1)[-1].removesuffix(" |").replace(chr(92) + "|", "|") for c, r in zip(CASES, rows)}
