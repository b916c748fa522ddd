"""The report pages' writers on hand-made judged cells: docs/robustness.md's best points, variants
and the other concepts' table (the attack and reactivation sections: tests/test_attacks.py)."""

import json

import pytest


def row(method, label, rate, drop, density=None, sibling=1.0):
    before = {
        "concept_rate": 1.0,
        "degraded_rate": 0.0,
        "fid": 3.0,
        "other_accuracy": {"shape": 1.0, "colour": 1.0, "texture": 1.0, "scene": 1.0},
    }
    after = {"concept_rate": rate, "degraded_rate": 0.0, "fid": 5.0,
             "other_accuracy": {"shape": 1.0 - drop, "colour": 1.0, "texture": sibling, "scene": 1.0}}  # fmt: skip
    return {"method": method, "label": label, "seed": 0, "seconds": 1.0, "before": before, "after": after, "density": density,
            "esd_loss": 0.01, "esd_loss_unedited": 0.04, "concept": "striped"}  # fmt: skip


def test_robustness_markdown_picks_the_best_point_within_the_harm_budget(tmp_path):
    """A hand-made sweep: the best point per eraser is the lowest concept rate with <= 5 points of
    harm (a 6-point drop does not count, nor does a 6-point loss of the siblings' texture)."""
    from workbench.reports.robustness import write_markdown

    rows = [row("conceptprune", "k=2%", 0.5, 0.02, 0.02), row("conceptprune", "k=10%", 0.1, 0.06, 0.1),
            row("pesd", "k=10%", 0.05, 0.04, 0.1), row("esd", "lr=0.0003", 0.0, 0.30),
            row("ac", "lr=0.0001", 0.0, 0.0, sibling=0.94)]  # fmt: skip
    text = write_markdown(tmp_path / "robustness.md", rows, "striped", 1, 1, quick=True).read_text()
    assert "- ac: no setting stays within 5 points of harm" in text
    assert (
        "- conceptprune: 50.0% of target images still show 'striped' at k=2% (worst drop 2.0 points; mean of 1 seed(s))" in text
    )
    assert "- pesd: 5.0% of target images still show 'striped' at k=10% (worst drop 4.0 points; mean of 1 seed(s))" in text
    assert "- esd: no setting stays within 5 points of harm" in text
    assert "within 5 points: pesd k=10% (density 10.00%)." in text
    assert "- Within 5 points of harm, pesd (5.0% left) erases more than conceptprune (50.0% left)." in text
    assert (tmp_path / "figures").is_dir() and "![" in text
    from workbench.reports.cells import worst

    # the harm protocol: every attribute counts, the erased concept's own (texture on the siblings) included
    assert worst(row("x", "", 0.0, 0.3)) == pytest.approx(0.3)
    assert worst(row("x", "", 0.0, 0.3, sibling=0.5)) == pytest.approx(0.5)
    assert worst({**row("x", "", 0.0, 0.3, sibling=0.5), "concept": "circle"}) == pytest.approx(0.5)


def test_robustness_markdown_reads_each_variant_beside_its_bases(tmp_path):
    from workbench.reports.robustness import write_markdown

    rows = [row("esd", "lr=0.0001", 0.4, 0.35), row("esd+preserve", "lr=0.0001", 0.3, 0.03), row("pesd", "k=10%", 1.0, 0.0, 0.1),
            row("pesd+esd-x", "k=10% lr=0.0001", 0.2, 0.1, 0.1)]  # fmt: skip
    text = write_markdown(tmp_path / "robustness.md", rows, "striped", 1, 1, quick=True).read_text()
    assert "## Variants (first seed)" in text
    assert ("- esd+preserve lr=0.0001: 30.0% left, worst drop 3.0 points; against esd lr=0.0001: 40.0% left, "
            "35.0 points (mean of 1)." in text)  # fmt: skip
    assert ("- pesd+esd-x k=10% lr=0.0001: 20.0% left, worst drop 10.0 points; against esd lr=0.0001: 40.0% left, "
            "35.0 points (mean of 1); pesd k=10%: 100.0% left, 0.0 points (mean of 1)." in text)  # fmt: skip
    plain = write_markdown(tmp_path / "plain.md", rows[:1], "striped", 1, 1, quick=True).read_text()
    assert "## Variants" not in plain and "## The other concepts" not in plain


def test_robustness_markdown_tabulates_the_other_concepts_sweeps_beside_its_work_folder(tmp_path):
    from workbench.reports.robustness import write_markdown

    cells = tmp_path / "robustness-circle" / "cells"
    cells.mkdir(parents=True)
    for i, (r, drop) in enumerate(
        [(row("conceptprune", "k=2%", 0.25, 0.0, 0.02), 0.04), (row("ac", "lr=0.0001", 0.0, 0.0), 0.01)]
    ):
        # a shape erased: the other shapes keep their shape (a fall there would count); the colour drop is the harm
        r["after"]["other_accuracy"] = {"shape": 0.99, "colour": 1.0 - drop, "texture": 1.0, "scene": 1.0}
        (cells / f"{i}.json").write_text(json.dumps({**r, "concept": "circle"}))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "robustness-circle.md").write_text("circle")
    text = write_markdown(tmp_path / "docs" / "robustness.md", [row("esd", "lr=0.0001", 0.4, 0.35)], "striped", 1, 1,
                          quick=True, work=tmp_path / "robustness").read_text()  # fmt: skip
    line = next(x for x in text.splitlines() if x.startswith("| [circle](robustness-circle.md) |"))
    cols = [c.strip() for c in line.strip("|").split("|")]
    assert cols[1] == "100%" and cols[3] == "25% / 4" and cols[7] == "0% / 1" and cols[2] == "-"


def test_robustness_markdown_reads_the_generalisation_gap_and_fresh_against_cached(tmp_path):
    """Hand-made cells with train / held-out losses: the table's column, one sentence per setting, and
    the verdict of fresh draws against the cached set beyond the seeds' spread."""
    from workbench.reports.robustness import write_markdown

    def trained(method, seed, rate, train, held):
        r = row(method, "k=10%", rate, 0.01, 0.1)
        return {**r, "seed": seed, "options": {"train_loss": train, "heldout_loss": held}}

    rows = [row("conceptprune", "k=2%", 0.5, 0.02, 0.02)]
    rows += [trained("pesd", s, r, 0.030, 0.033) for s, r in ((0, 0.40), (1, 0.50), (2, 0.45))]
    rows += [trained("pesd cached", s, r, 0.012, 0.035) for s, r in ((0, 1.0), (1, 0.95), (2, 1.0))]
    text = write_markdown(tmp_path / "robustness.md", rows, "striped", 1, 1, quick=True).read_text()
    assert "| 0.0120 / 0.0350 |" in text and "| - |" in text  # ConceptPrune trains nothing: no gap
    assert ("- pesd cached k=10%: its own objective's loss 0.0120 on the draws it trained on, 0.0350 on the same prompts "
            "and steps from unseen seeds (held-out / train 2.92)") in text  # fmt: skip
    assert "pesd k=10% trained on fresh draws erases more than on the cached set (45.0% against 98.3%" in text
    close = rows[:4] + [trained("pesd cached", s, r, 0.012, 0.035) for s, r in ((0, 0.48), (1, 0.43), (2, 0.5))]
    text = write_markdown(tmp_path / "close.md", close, "striped", 1, 1, quick=True).read_text()
    assert "erases about as much as on the cached set" in text


def test_robustness_page_keeps_the_notes_below_its_marker(tmp_path):
    """A reader's paragraph below the marker survives regeneration; the generated part is replaced."""
    from workbench.reports.kept import marker
    from workbench.reports.robustness import write_markdown

    out = tmp_path / "robustness.md"
    write_markdown(out, [row("esd", "lr=0.0001", 0.4, 0.35)], "striped", 1, 1, quick=True)
    assert out.read_text().count(marker("workbench robustness")) == 1
    out.write_text(out.read_text() + "\nmy reading of the numbers\n")
    text = write_markdown(out, [row("esd", "lr=0.0001", 0.25, 0.02)], "striped", 1, 1, quick=True).read_text()
    head, tail = text.split(marker("workbench robustness"))
    assert tail == "\n\nmy reading of the numbers\n" and "25.0%" in head and "40.0%" not in head
    assert text.count(marker("workbench robustness")) == 1 and "## What we assumed" in head


def test_notes_on_generated_pages_quote_only_numbers_their_page_shows():
    """A reader's notes below a page's marker may quote its numbers, not type new ones: every decimal
    and percentage in the notes stands in the generated part above (so a regenerated page whose
    numbers moved fails here until its notes are read again)."""
    import re
    from pathlib import Path

    from workbench.reports.kept import kept_notes

    docs = Path(__file__).parents[1] / "docs"
    pages = [p for p in sorted(docs.glob("*.md")) if kept_notes(p)]
    assert any(p.name == "robustness-lang.md" for p in pages)  # the page whose notes answer issue 24
    for page in pages:
        notes = kept_notes(page)
        head = page.read_text()[: -len(notes)]
        missing = [n for n in re.findall(r"\d+\.\d+%?|\d+%", notes) if n not in head]
        assert not missing, f"{page.name}: the notes quote {missing}, which the generated part does not show"


def test_static_figures_that_the_browser_did_not_write_are_left_out_not_linked(tmp_path, monkeypatch, capsys):
    """Kaleido has been seen to return without writing a PNG: a page must not link a figure that is
    not there, nor pass an earlier run's file off as this one's."""
    import plotly.graph_objects as go
    import plotly.io as pio

    from workbench.reports.plots import write_images

    (tmp_path / "a-figure.png").write_bytes(b"an earlier run's figure")
    monkeypatch.setattr(pio, "write_images", lambda *a, **k: None)  # a browser that returns and writes nothing
    assert write_images([("a figure", go.Figure())], tmp_path) == {}
    assert "wrote no file" in capsys.readouterr().out and not (tmp_path / "a-figure.png").exists()
