"""`workbench benchmark`: every eraser on toy concepts in UnlearnCanvas's form, each number read
back from the cells and attack runs it was computed from."""

import json

import pandas as pd
import pytest

from workbench.cli import main


def test_benchmark_cells_page_and_csv_come_from_the_judged_cells(tmp_path, capsys):
    from workbench.attacks import read_result

    work, out = tmp_path / "w", tmp_path / "docs" / "benchmark.md"
    argv = ["benchmark", "--concepts", "striped", "--erasers", "uce", "--attack-budget", "1", "--steps", "3", "--t-hat", "2",
            "--n-per", "1", "--work", str(work), "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    table = pd.read_csv(out.with_name("benchmark.csv"))
    assert table["eraser"].tolist() == ["unedited", "uce scale=0.001"] and set(table["kind"]) == {"texture"}
    cell = json.loads(next((work / "striped" / "cells").glob("*.json")).read_text())
    row = table.iloc[1]
    acc = cell["after"]["other_accuracy"]
    assert row["UA"] == pytest.approx(1 - cell["after"]["concept_rate"]) and row["IRA"] == pytest.approx(acc["texture"])
    assert row["CRA"] == pytest.approx((acc["shape"] + acc["colour"] + acc["scene"]) / 3)
    res = read_result(next(p for p in (work / "striped" / "attacks").iterdir() if p.name.startswith("uce")))
    assert (row["pre_asr"], row["post_asr"], row["asr"]) == pytest.approx((res["pre_asr"]["rate"], res["post_asr"]["rate"],
                                                                         res["asr"]["rate"]))  # fmt: skip
    text = out.read_text()
    assert f"| uce scale=0.001 | {row['UA']:.3f} | {row['IRA']:.3f} | {row['CRA']:.3f} |" in text and "Judge: `toy`" in text
    first = (work / "striped" / "cells").stat().st_mtime_ns
    capsys.readouterr()
    assert main(argv) == 0 and (work / "striped" / "cells").stat().st_mtime_ns == first  # resumed: nothing made again
    assert main([*argv[:2], "nonesuch", *argv[3:]]) == 2 and "nonesuch" in capsys.readouterr().err


def test_the_budget_sentence_picks_the_best_eraser_within_the_harm_budget():
    from workbench.reports.benchmark_page import best_within_budget

    means = pd.DataFrame({"eraser": ["unedited", "a", "b", "c"], "UA": [0.0, 0.9, 0.6, 0.99], "IRA": [1.0, 0.95, 0.99, 0.5],
                          "CRA": [1.0, 0.92, 1.0, 1.0], "asr": [1.0, 0.5, 0.4, 0.1], "pre_asr": [1.0, 0.1, 0.4, 0.0],
                          "post_asr": [0.0, 0.4, 0.0, 0.1]})  # fmt: skip
    text = best_within_budget(means)
    assert "a erases most: UA 0.900, ASR 0.500 (pre 0.100 + post 0.400)" in text and "Over the budget: c." in text
