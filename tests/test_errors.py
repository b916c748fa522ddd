"""Every bad input of docs/errors.md: one line on stderr naming the problem and the fix, exit 2,
nothing half-made left behind. docs/errors.md is generated from the CASES below with the
messages they really produce (regenerate: WORKBENCH_WRITE_ERRORS_DOC=1 pytest tests/test_errors.py)."""

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import zarr

from workbench.cli import main

DOC = Path(__file__).parent.parent / "docs" / "errors.md"
STEPS = 3


@dataclass
class Case:
    key: str
    what: str  # the bad input, as a user would describe it
    argv: list[str]  # {store}, {tmp}, {pairs}, ... are filled in per run
    expect: str  # a regex the message must match
    absent: str | None = None  # a path that must not exist afterwards (nothing half-made)
    setup: list[str] = field(default_factory=list)  # names of damage to do first (see damaged())


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
         r"t_hat=9 is beyond the recorded steps: this store has 3 UNet calls per prompt, use 1..3"),
    Case("window", "unknown step window", ["masks", "{store}", "--target", "striped", "--reference", "plain", "--window", "foo"],
         r"unknown window 'foo': use 'first:T', 'all' or 'last:N'"),
    Case("target", "a target set the store does not hold", ["masks", "{store}", "--target", "dotted", "--reference", "plain"],
         r"prompt set 'dotted' is not in this store"),
    Case("weights", "masks with a model whose weights differ from the store's", ["masks", "{store}", "--target", "striped", "--reference", "plain", "--model", "{other_model}"],
         r"recorded with other weights than this model's \(unet: store \w+, model \w+\).*--allow-other-weights"),
    Case("model", "a model folder that is not there", ["masks", "{store}", "--target", "striped", "--reference", "plain", "--model", "{tmp}/no-model"],
         r"could not load the hub id .*does not download weights"),
    Case("half", "a half-written store", ["masks", "{damaged}", "--target", "striped", "--reference", "plain", "--t-hat", "2"],
         r"is half-written: 1 of 4 prompts are not recorded", setup=["undone"]),
    Case("deleted", "a chunk file deleted from a store", ["masks", "{damaged}", "--target", "striped", "--reference", "plain", "--t-hat", "2"],
         r"is damaged: 1 chunk\(s\) of recorded prompts are missing.*info --check", setup=["delete"]),
    Case("deleted-check", "the same, checked", ["info", "{damaged}", "--check"], r"is damaged: 1 chunk\(s\) of recorded prompts are missing: [\w.]+/sumsq prompts 0-3", setup=["delete"]),
    Case("truncated", "a truncated chunk of the per-set sums masks read", ["masks", "{damaged}", "--target", "striped", "--reference", "plain", "--t-hat", "2"],
         r"a chunk of the store could not be decoded .*workbench info --check", setup=["truncate-reduction"]),
    Case("lost-reduction", "a file of the per-set sums deleted", ["masks", "{damaged}", "--target", "striped", "--reference", "plain", "--t-hat", "2"],
         r"sums for [\w.]+ hold NaN: its per-set reductions \(rebuild them: `workbench reduce STORE`\) are damaged", setup=["delete-reduction"]),
    Case("lost-reduction-check", "the same, checked", ["info", "{damaged}", "--check"],
         r"array reductions/[\w.]+/sumsq(_unit)? is missing its data near row 0; rebuild them with `workbench reduce STORE`", setup=["delete-reduction"]),
    Case("truncated-check", "the same, checked", ["info", "{damaged}", "--check"], r"array [\w.]+/sumsq has a corrupt chunk near prompt 0", setup=["truncate"]),
    Case("shard", "a shard index out of range", ["record", "--prompts", "{pairs}", "--steps", "2", "--shard", "4/4", "--out", "{tmp}/e.zarr"],
         r"shard 4/4 is out of range: the index runs from 0 to N-1", absent="{tmp}/e.zarr"),
    Case("noprompts", "record without prompts", ["record", "--out", "{tmp}/f.zarr"], r"give --prompts SET .*--finalise STORE", absent="{tmp}/f.zarr"),
    Case("finalise", "finalising a store with prompts missing", ["record", "--finalise", "{damaged}"],
         r"1 of 4 prompts are not recorded yet \(first: row 1\): run the same record command again", setup=["undone"]),
    Case("erase", "erasing something that is not a toy concept", ["erase", "--method", "esd", "--concept", "plain", "--out", "{tmp}/g"],
         r"'plain': erase a texture \(striped, dotted, checkered\) or a shape", absent="{tmp}/g"),
    Case("url", "recording straight to object storage", ["record", "--prompts", "{pairs}", "--steps", "2", "--out", "s3://bucket/x.zarr"],
         r"recording writes a local folder .*workbench push STORE s3://bucket/x.zarr"),
    Case("nostore", "a path that holds no store", ["info", "{tmp}/nowhere.zarr"], r"is not a recording store \(no zarr.json\)"),
]  # fmt: skip


@pytest.fixture(scope="module")
def world(toy, tmp_path_factory):
    """A 2+2 prompt store (target 'striped', reference 'plain', paired by line) and a toy copy
    with other weights."""
    from workbench.editing import export_pruned
    from workbench.models import module_of, select

    root = tmp_path_factory.mktemp("errors")
    pairs = root / "pairs.txt"
    pairs.write_text(
        "striped\ta red circle with stripes\nstriped\ta blue cross with stripes\nplain\ta red circle\nplain\ta blue cross\n"
    )
    store = root / "store.zarr"
    assert main(["record", "--prompts", str(pairs), "--steps", str(STEPS), "--out", str(store), "--quiet"]) == 0
    site = select(toy, "ffn2")[0]
    export_pruned(toy, {site.name: np.eye(*module_of(toy, site).weight.shape, dtype=bool)}, root / "other-model")
    return {"root": root, "pairs": pairs, "store": store, "other_model": root / "other-model"}


def damaged(world, how: str, tmp: Path) -> Path:
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
    return path


def run_case(case: Case, world, tmp: Path, capsys) -> tuple[int, str]:
    (tmp / "empty.txt").write_text("# nothing here\n")
    fill = {"tmp": str(tmp), "store": str(world["store"]), "pairs": str(world["pairs"]), "other_model": str(world["other_model"])}
    for how in case.setup:
        fill["damaged"] = str(damaged(world, how, tmp))
    capsys.readouterr()
    rc = main([a.format(**fill) for a in case.argv])
    err = capsys.readouterr().err.strip()
    if case.absent:
        assert not Path(case.absent.format(**fill)).exists(), "a half-made store was left behind"
    return rc, err.replace(str(tmp), "TMP").replace(str(world["root"]), "ROOT")


MESSAGES: dict[str, str] = {}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.key)
def test_bad_input_gets_one_clear_line(case, world, tmp_path, capsys):
    rc, err = run_case(case, world, tmp_path, capsys)
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("workbench: error: "), err
    assert re.search(case.expect, lines[0]), lines[0]
    MESSAGES[case.key] = lines[0].removeprefix("workbench: error: ")


def render(messages: dict[str, str]) -> str:
    rows = ["| bad input | command | what it gets (exit code 2, one line on stderr) |", "| --- | --- | --- |"]
    for c in CASES:
        cmd = "workbench " + " ".join(c.argv).replace("{", "").replace("}", "")
        msg = messages[c.key].replace("|", "\\|")
        rows.append(f"| {c.what} | `{cmd}` | {msg} |")
    return "\n".join(
        [
            "# Bad inputs and what they get",
            "",
            "Generated from `tests/test_errors.py`, which runs every row and checks that its message is",
            "the one below (regenerate with `WORKBENCH_WRITE_ERRORS_DOC=1 pytest tests/test_errors.py`).",
            "TMP is the test's scratch folder; `pairs` a file of 2 target and 2 reference prompts; `store` a",
            "3-step toy recording of it; `damaged` a copy of it with one prompt un-flagged, a chunk deleted",
            "a chunk cut in half, or a file of its per-set sums (reductions) cut in half or deleted; `other_model` the toy world with one weight matrix changed.",
            "",
            *rows,
            "",
            "Not in the table because this machine runs as root, for whom permissions do not apply: an",
            "`--out` in a read-only folder or extending a read-only store gets `cannot use PATH (Permission",
            "denied): choose another path, or fix its permissions`, exit 2.",
            "",
        ]
    )


def test_errors_doc_is_generated_from_these_cases():
    if len(MESSAGES) != len(CASES):
        pytest.skip("needs every case above to have run in this session")
    text = render(MESSAGES)
    if os.environ.get("WORKBENCH_WRITE_ERRORS_DOC") == "1":
        DOC.write_text(text)
    assert DOC.read_text() == text, "docs/errors.md is stale: WORKBENCH_WRITE_ERRORS_DOC=1 pytest tests/test_errors.py"
