"""The demo end to end (small), its JSON summary, and its report rendered in headless Chromium."""

import contextlib
import io
import json
import os
import shutil
import subprocess

import pytest

from workbench.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(["demo", "--out", str(out), "--steps", "6", "--t-hat", "3", "--n-per", "1", "--json"])
    (out / "stdout.json").write_text(printed.getvalue())
    return out, rc


def test_demo_summary(demo):
    out, rc = demo
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("concept", "k", "t_hat", "density", "store", "masks", "report", "seconds", "before", "after"):
        assert key in summary
    assert summary["concept"] == "striped" and summary["k"] == 2.0 and summary["t_hat"] == 3
    for side in ("before", "after"):
        assert set(summary[side]) == {"concept_rate", "degraded_rate", "other_accuracy", "fid"}
        assert summary[side]["fid"] >= 0
        assert set(summary[side]["other_accuracy"]) == {"shape", "colour", "texture", "scene"}
    assert 0 < summary["density"] < 0.2
    assert json.loads((out / "stdout.json").read_text()) == summary  # --json printed the same object
    from safetensors.torch import load_file

    masks = load_file(summary["masks"])
    assert all(k.endswith("ff.net.2") for k in masks) and len(masks) == 7
    # the summary's numbers are the saved masks' and appear in the report as written
    assert summary["density"] == pytest.approx(sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values()))
    report = (out / "report.html").read_text()
    for side in ("before", "after", "random_control"):
        assert f"<td>{summary[side]['concept_rate']:.1%}</td>" in report
    assert all(0 <= summary[s]["concept_rate"] <= 1 for s in ("before", "after", "random_control"))


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true", reason="chromium not installed (setup.sh --test installs it)"
)
def test_report_draws_in_chromium(demo, tmp_path):
    out, _ = demo
    assert CHROMIUM, "chromium is missing: run `bash setup.sh --test`"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000"]  # fmt: skip
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", (out / "report.html").as_uri()], capture_output=True, text=True, timeout=180
    ).stdout
    n_figs = dom.count('class="plotly-graph-div')
    assert n_figs == 6  # readings, density, share per call, norms, two labelled grids
    assert dom.count('class="main-svg"') >= n_figs  # plotly drew every figure (no script error, no network)
    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, *flags, "--window-size=1200,1600", f"--screenshot={shot}", (out / "report.html").as_uri()],
        capture_output=True,
        timeout=180,
    )
    assert shot.exists() and shot.stat().st_size > 20_000


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true", reason="chromium not installed (setup.sh --test installs it)"
)
def test_user_strings_in_a_report_are_text_not_markup(tmp_path):
    """A concept and an attribute named with markup: Chromium shows them as text, runs no script."""
    from workbench.reports.demo import write_report
    from workbench.reports.plots import before_after

    assert CHROMIUM, "chromium is missing: run `bash setup.sh --test`"
    bad = "<img src=x onerror=\"document.title='pwned'\">"
    side = {"concept_rate": 0.5, "degraded_rate": 0.0, "fid": 1.0, "other_accuracy": {"<b id=evil>shape</b>": 0.9}}
    summary = {"concept": bad, "k": 2.0, "t_hat": 3, "density": 0.01, "density_of_unet": 0.001, "seconds": 1.0,
               "before": side, "after": side, "random_control": side}  # fmt: skip
    page = write_report(tmp_path / "r.html", summary, [(f"about {bad}", before_after(summary["before"], summary["after"], bad))],
                        {"model_id": bad})  # fmt: skip
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]  # fmt: skip
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180).stdout
    assert "<title>ConceptPrune on the toy world" in dom and "<title>pwned</title>" not in dom  # the onerror never ran
    assert "<img" not in dom and 'id="evil"' not in dom
    assert "&lt;img src=x onerror=" in dom and "&lt;b id=evil&gt;shape&lt;/b&gt; accuracy on other prompts" in dom
