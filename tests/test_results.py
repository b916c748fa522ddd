"""`workbench results` end to end in its quick form: every table, the verdict, the figures, and
a rewrite that keeps the notes and recomputes nothing."""

import os
import re
import shutil
import subprocess

import pytest

from workbench.evaluation.ablate import open_results
from workbench.reports.results import NOTES, OTHER, run_results, verdicts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    out = root / "results.md"
    done = run_results(out, root / "stores", steps=3, n_per=1, quick=True, progress=False)
    return root, out, done


def test_every_table_is_written_from_its_store(quick):
    root, out, done = quick
    text = out.read_text()
    for head in (
        "(a) Style",
        "(a') Style",
        "(b) Object",
        "(b') Object",
        "(c) Site",
        "(d) Sparsity",
        "(e) Skilled",
        "(f) Union",
        "## Acceptance",
    ):
        assert head in text
    ds = open_results(root / "stores" / "c_sites.zarr")
    rate = float(ds["concept_rate"].sel(concept="striped", family="text.fc2", kind="skilled").squeeze())
    row = next(line for line in text.splitlines() if line.startswith("| striped | text.fc2 | skilled |"))
    assert re.search(r"Unpruned rates per member: striped\+dotted: striped [\d.]+ %, dotted [\d.]+ %", text)
    verdict = text.split("## Acceptance", 1)[1].split("\n## ", 1)[0]
    met = expected_met(root)
    assert verdict.count("- MET in") == met
    assert ("NOT MET in any skilled cell" in verdict) == (met == 0)
    kept = float(ds["target_other"].sel(concept="striped", family="text.fc2", kind="skilled").squeeze())
    header = next(line for line in text.splitlines() if line.startswith("| concept | family | kind |"))
    cells = dict(zip(header.strip("| ").split(" | "), row.strip("| ").split(" | ")))
    assert cells["concept rate"].endswith(f"→ {100 * rate:.1f} %") and cells["kept on target"].endswith(f"→ {100 * kept:.1f} %")


def expected_met(root) -> int:
    """The acceptance rule computed here, from the result stores, independently of verdicts()."""
    met = 0
    for key in ("a_plain", "a_others", "d_tradeoff", "e_kinds"):
        ds = open_results(root / "stores" / f"{key}.zarr")
        df = ds[["concept_rate", *OTHER]].to_dataframe().reset_index()
        for _, row in df[df["kind"] == "skilled"].iterrows():
            b = ds.attrs["baseline"][row["concept"]]
            cut = 1 - row["concept_rate"] / b["concept_rate"] if b["concept_rate"] else 0
            met += cut >= 0.9 and max(b["other_accuracy"][a] - row[a] for a in OTHER) <= 0.05
    return met


def test_verdict_follows_the_numbers(quick):
    """A cell that erases everything and keeps every attribute is MET; a 6-point drop is not."""
    root, _, _ = quick
    ds = open_results(root / "stores" / "e_kinds.zarr")
    skilled = {"kind": "skilled"}
    good = ds.copy(deep=True)
    good.attrs["baseline"]["striped"]["concept_rate"] = 0.9  # 3-step images may show no stripes at all
    good["concept_rate"].loc[skilled] = 0.0
    for a in OTHER:
        good[a].loc[skilled] = good.attrs["baseline"]["striped"]["other_accuracy"][a]
    others = {k: open_results(root / "stores" / f"{k}.zarr") for k in ("a_plain", "a_others", "d_tradeoff")}
    for v in others.values():  # no cell of theirs passes
        v["concept_rate"][:] = 1.0
    assert sum(line.startswith("- MET in e_kinds: striped") for line in verdicts({**others, "e_kinds": good})) == good.sizes["k"]
    bad = good.copy(deep=True)
    bad["shape"].loc[skilled] = bad.attrs["baseline"]["striped"]["other_accuracy"]["shape"] - 0.06
    assert verdicts({**others, "e_kinds": bad})[0].startswith("- NOT MET")


def test_rewrite_keeps_notes_and_resumes(quick):
    root, out, _ = quick
    out.write_text(out.read_text() + "\nmy hand-written reading of the numbers\n")
    mtimes = {p: p.stat().st_mtime for p in (root / "stores").glob("*.zarr/concept_rate/**/*") if p.is_file()}
    run_results(out, root / "stores", steps=3, n_per=1, quick=True, progress=False)
    text = out.read_text()
    assert text.count(NOTES) == 1 and text.endswith("my hand-written reading of the numbers\n")
    assert {p: p.stat().st_mtime for p in mtimes} == mtimes  # no finished cell was computed again


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true", reason="chromium not installed (setup.sh --test installs it)"
)
def test_figures_draw_in_chromium(quick, tmp_path):
    _, _, done = quick
    assert CHROMIUM, "chromium is missing: run `bash setup.sh --test`"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000"]  # fmt: skip
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", f"file://{os.path.abspath(done['figures'])}"],
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    n = dom.count('class="plotly-graph-div')
    assert n == 8 and dom.count('class="main-svg"') >= n
    # the same figures as static PNGs, each shown once in the markdown
    root, out, _ = quick
    text = out.read_text()
    assert len(done["images"]) == 8
    for path in done["images"].values():
        png = out.parent / path
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
        assert text.count(f"]({path})") == 1
    assert text.index("![(d) k and t-hat") > text.index("## (d) Sparsity")  # beside its table


def test_the_reading_of_the_numbers_is_computed_from_the_cells(quick):
    """Change a cell and the sentence changes with it: no number in 'Reading the numbers' is typed."""
    from workbench.reports.results import findings
    from workbench.store import open_store

    root, out, _ = quick
    assert "## Reading the numbers" in out.read_text().split(NOTES)[0]
    tree = open_store(root / "stores" / "toy.zarr")
    d = open_results(root / "stores" / "d_tradeoff.zarr")
    base = d.attrs["baseline"]["striped"]["concept_rate"]
    d["concept_rate"].loc[{"window": "first:1"}] = base
    assert "- (d) The first UNet call alone: cuts no stripe at any k in the table." in findings({"d_tradeoff": d}, tree, 1)
    d["concept_rate"].loc[{"window": "first:1", "k": 5.0}] = base / 2
    assert "- (d) The first UNet call alone: cuts stripes at k = 5 % (50%), nothing at the other k." in findings(
        {"d_tradeoff": d}, tree, 1
    )
    c = open_results(root / "stores" / "c_sites.zarr")
    widths = {v["width"] for v in tree.attrs["site_info"].values() if v["family"] == "attn2.to_k"}
    assert f"the text encoder's {'/'.join(map(str, sorted(widths)))}-d states" in "\n".join(findings({"c_sites": c}, tree, 1))


def test_results_tables_and_the_robustness_grid_judge_one_conceptprune_edit_alike(toy, tmp_path):
    """ConceptPrune k = 2 % on 'striped' against 'plain' is one edit in both machineries, run here at
    tiny sizes: the results' ablation (a store, its skilled mask, the oracle) and the robustness
    grid's cell (make_edit, erase_and_judge): same concept rate, same density, same worst drop (one
    harm function)."""
    from workbench.evaluation.ablate import Ablation, ablate
    from workbench.models.toyworld import load_oracle
    from workbench.prompts import get
    from workbench.recording import record
    from workbench.reports.cells import Cell, run_cell
    from workbench.reports.results import worst_drop
    from workbench.store import open_store

    oracle = load_oracle()
    tree = open_store(record(toy, get("texture:striped"), tmp_path / "s.zarr", steps=4, progress=False))
    spec = Ablation(concepts=["striped"], reference="plain", ks=[2.0], windows=["first:3"], kinds=["skilled"], steps=4, n_per=1)
    table = ablate(toy, oracle, tree, spec, tmp_path / "a.zarr", progress=False)
    a = table.isel(concept=0, family=0, k=0, window=0, kind=0)
    b = run_cell(toy, oracle, Cell("conceptprune", {"k": 2.0}), "striped", tmp_path / "w", 1, {"steps": 4, "t_hat": 3})
    assert float(a["concept_rate"]) == b["after"]["concept_rate"]
    assert float(a["density"]) == pytest.approx(b["density"], abs=1e-12)
    assert worst_drop(table.attrs["baseline"]["striped"], a) == pytest.approx(b["harm"]["worst"], abs=1e-12)
