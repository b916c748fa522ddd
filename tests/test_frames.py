"""Report tables as DataFrames and CSV: the rows carry the harm protocol's numbers of the cells on disk."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import workbench as wb
from workbench.cli import main


def reading(rate, shape, texture, degraded=0.0, fid=3.0):
    return {"concept_rate": rate, "degraded_rate": degraded, "other_accuracy": {"shape": shape, "texture": texture}, "fid": fid}


def test_cells_frame_reads_every_cell_with_the_harm_protocol(tmp_path, capsys):
    cells = tmp_path / "cells"
    cells.mkdir()
    before = reading(1.0, 1.0, 1.0)
    # a sibling-texture loss (0.25) larger than the shape loss (0.1) is the worst drop
    one = {"method": "conceptprune", "concept": "striped", "label": "k=2%", "seed": 0, "before": before,
           "after": reading(0.5, 0.9, 0.75, degraded=0.125, fid=9.0), "density": 0.03, "seconds": 1.5, "wall": 4.0}  # fmt: skip
    two = {"method": "esd", "concept": "striped", "label": "lr=0.0001", "seed": 1, "before": before,
           "after": reading(0.25, 1.0, 1.0), "options": {"lr": 1e-4, "iterations": 200}, "seconds": 9.0}  # fmt: skip
    (cells / "b.json").write_text(json.dumps(two))
    (cells / "a.json").write_text(json.dumps(one))
    df = wb.cells_frame(tmp_path)
    assert list(df["method"]) == ["conceptprune", "esd"]
    cp = df.iloc[0]
    assert cp["worst_drop"] == pytest.approx(0.25) and cp["worst_attribute"] == "texture"
    assert cp["drop_shape"] == pytest.approx(0.1) and cp["degraded"] == pytest.approx(0.125)
    assert cp["fid_change"] == pytest.approx(6.0) and cp["rate"] == 0.5 and cp["density"] == 0.03
    assert df.iloc[1]["option_lr"] == 1e-4 and np.isnan(df.iloc[1]["density"])
    # the CLI writes the same table as CSV
    out = tmp_path / "t" / "cells.csv"
    assert main(["table", str(tmp_path), "--csv", str(out)]) == 0
    back = pd.read_csv(out)
    assert back["worst_drop"].tolist() == pytest.approx(df["worst_drop"].tolist())
    assert "2 rows" in capsys.readouterr().out


def test_attacks_frame_and_a_folder_without_a_table(tmp_path, capsys):
    from workbench.attacks import wilson

    run = tmp_path / "attacks" / "esd-lr0p0001-s0--unlearndiff-b30-s2"
    run.mkdir(parents=True)
    before, after = [True, True] + [False] * 6, [False, True, True] + [False] * 5
    rows = [
        {"prompt": f"p{i}", "seed": i, "before": b, "after": a, "attacked": "x"} for i, (b, a) in enumerate(zip(before, after))
    ]
    # saved before pre/post ASR: its 'asr' was the attacked images' rate (2 of 8); read again from its verdicts
    res = {"attack": "unlearndiff", "prompts": 8, "asr": {"k": 2, "n": 8, "rate": 0.25, "ci95": [0.07, 0.59]},
           "pre_attack": {"rate": 0.25}, "asr_new": {"rate": 1 / 6}, "per_prompt": rows, "wall": 12.0}  # fmt: skip
    (run / "result.json").write_text(json.dumps(res))
    df = wb.attacks_frame(tmp_path)
    assert df.iloc[0][["edit", "attack", "seed", "pre_asr", "post_asr", "asr", "attacked"]].tolist() == [
        "esd-lr0p0001-s0", "unlearndiff", 2, 0.25, 0.125, 0.375, 0.25]  # fmt: skip
    assert df.iloc[0]["asr_hi"] == pytest.approx(wilson(3, 8)[1])
    assert main(["table", str(tmp_path / "attacks")]) == 0 and "unlearndiff" in capsys.readouterr().out
    assert main(["table", str(tmp_path / "attacks" / "nothing")]) == 2
    assert "holds no table" in capsys.readouterr().err


def test_results_frame_skips_unmeasured_cells():
    coords = {"concept": ["striped"], "family": ["ffn2"], "k": [2.0, 5.0], "window": ["all"], "kind": ["skilled"]}
    shape = (1, 1, 2, 1, 1)

    def var(*vals):
        return (list(coords), np.array(vals, dtype=float).reshape(shape))

    ds = xr.Dataset(
        {"concept_rate": var(0.5, np.nan), "degraded_rate": var(0.0, np.nan), "density": var(0.02, np.nan),
         "shape": var(0.9, np.nan), "colour": var(1.0, np.nan), "texture": var(0.7, np.nan), "scene": var(1.0, np.nan),
         "fid": var(20.0, np.nan), "done": (list(coords), np.array([True, False]).reshape(shape))},
        coords=coords,
        attrs={"baseline": {"striped": reading(1.0, 1.0, 1.0) | {"other_accuracy": {"shape": 1.0, "colour": 1.0, "texture": 1.0, "scene": 1.0}}}},
    )  # fmt: skip
    df = wb.results_frame(ds)
    assert len(df) == 1 and df.iloc[0]["k"] == 2.0
    assert df.iloc[0]["worst_drop"] == pytest.approx(0.3) and df.iloc[0]["relative_cut"] == pytest.approx(0.5)


def test_threshold_sweep_judges_saved_scores_again_without_images(tmp_path, capsys):
    from workbench.attacks import AttackResult
    from workbench.attacks.run import save

    prompts, seeds = ["a", "b", "c"], [0, 1, 2]
    scored = AttackResult("softprompt", "nudity", prompts, seeds, [False, True, False], [True, True, False], ["x"] * 3,
                          score_before=[0.5, 0.7, 0.1], score_after=[0.8, 0.7, 0.3])  # fmt: skip
    save(scored, tmp_path / "attacks" / "esd--softprompt-b1-s0", {})
    save(
        AttackResult("softprompt", "striped", prompts, seeds, [False] * 3, [True] * 3, ["x"] * 3),
        tmp_path / "attacks" / "toy",
        {},
    )
    assert main(["table", str(tmp_path / "attacks"), "--thresholds", "0.45,0.6,0.75", "--csv", str(tmp_path / "t.csv")]) == 0
    df = pd.read_csv(tmp_path / "t.csv")  # the run without scores (the toy oracle's) is left out
    got = {t: tuple(round(x, 6) for x in (r.pre_asr, r.post_asr, r.asr)) for t, r in zip(df["threshold"], df.itertuples())}
    third = round(1 / 3, 6)
    assert set(df["run"]) == {"esd--softprompt-b1-s0"}
    assert got == {0.45: (round(2 / 3, 6), 0.0, round(2 / 3, 6)), 0.6: (third, third, round(2 / 3, 6)), 0.75: (0.0, third, third)}
    from workbench.reports.attacked import threshold_section

    page = threshold_section(tmp_path)  # the robustness page's section: one row an edit and attack, the toy run left out
    assert page[0] == "## The judge's threshold" and len([x for x in page if x.startswith("| esd |")]) == 1
    assert "| esd | softprompt | 66.7% / 0.0% / 66.7% | 33.3% / 33.3% / 66.7% | 0.0% / 33.3% / 33.3% |" in page
    assert threshold_section(tmp_path / "nowhere") == []
