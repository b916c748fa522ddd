"""Plugins: the registries' rules, and the example package of examples/plugin installed into a
temporary folder, found by the CLI through entry points and run end to end on the toy world."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from workbench.editing.methods import ERASERS
from workbench.registry import Registry, UnknownName, options_of

ROOT = Path(__file__).parents[1]


@dataclass(frozen=True)
class _Spec:
    name: str
    help: str = ""


def test_a_registry_refuses_a_second_spec_under_one_name_and_names_the_valid_ones():
    reg = Registry("widget", "workbench.no-such-group")
    reg.register(_Spec("a"), "here")
    with pytest.raises(ValueError, match="registered twice .here and there."):
        reg.register(_Spec("a"), "there")
    with pytest.raises(UnknownName, match="unknown widget 'b': use one of a"):
        reg["b"]
    assert list(reg) == ["a"] and "a" in repr(reg)


def test_options_are_checked_against_the_erasers_own_fields():
    esd = ERASERS["esd"].options
    with pytest.raises(UnknownName, match="eraser 'esd' has no option 'k'"):
        options_of(esd, {"k": 2.0}, "eraser 'esd'")
    assert options_of(esd, {"lr": 1e-3}, "eraser 'esd'").lr == 1e-3


def test_a_misspelt_cell_option_fails_when_the_grid_is_built(monkeypatch):
    from workbench.reports import cells

    real = cells._grid

    def misspelt(*args, **kw):
        out = real(*args, **kw)
        return [cells.Cell(out[0].method, {**out[0].options, "kk": 1.0}, 0, "typo"), *out[1:]]

    monkeypatch.setattr(cells, "_grid", misspelt)
    with pytest.raises(UnknownName, match="has no option 'kk'"):
        cells.grid(quick=True)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> dict:
    """The example plugin installed into a folder of its own; the environment that sees it."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
                    str(ROOT / "examples" / "plugin")], check=True, capture_output=True)  # fmt: skip
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}


def _cli(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "workbench", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_example_plugin_appears_in_every_help_it_extends(plugin):
    assert "damp" in _cli(plugin, "erase", "--help") and "--strength" in _cli(plugin, "erase", "--help")
    assert "emphasis" in _cli(plugin, "attack", "--help")
    assert "brightness" in _cli(plugin, "attack", "--help")  # --judge's kinds
    assert "damp" not in _cli(os.environ.copy(), "erase", "--help")  # not installed: not there


def test_the_example_plugin_runs_end_to_end_on_the_toy_world(plugin, tmp_path):
    out = tmp_path / "damp"
    erased = json.loads(_cli(plugin, "erase", "--method", "damp", "--concept", "striped", "--steps", "3", "--n-per", "1",
                             "--out", str(out), "--json"))  # fmt: skip
    assert erased["method"] == "damp" and erased["options"]["strength"] == 1.0
    assert (out / "weights.safetensors").exists() and json.loads((out / "edit.json").read_text())["method"] == "damp"
    attacked = json.loads(_cli(plugin, "attack", "--attack", "emphasis", "--edit", str(out), "--concept", "striped", "--steps",
                               "3", "--budget", "1", "--judge", "brightness:0.2", "--out", str(tmp_path / "atk"), "--json"))  # fmt: skip
    per_prompt = json.loads((tmp_path / "atk" / "result.json").read_text())["per_prompt"]
    assert attacked["method"] == "emphasis" and attacked["prompts"] == len(per_prompt) > 0
    assert all(r["attacked"].startswith(r["prompt"] + ",") for r in per_prompt)  # the words repeated once
    done = subprocess.run([sys.executable, "-m", "workbench", "erase", "--method", "damp", "--strength", "2", "--concept",
                           "striped", "--steps", "3", "--out", str(tmp_path / "bad")], env=plugin, capture_output=True, text=True)  # fmt: skip
    assert done.returncode != 0 and "strength=2.0 must lie in [0, 1]" in done.stderr


def test_an_eraser_that_makes_non_finite_weights_is_refused(toy):
    """A broken plugin's NaN weights never pass for an edit."""
    import torch

    from workbench.editing import Edit, make_edit
    from workbench.editing.methods import WEIGHTS, EraserSpec

    name = "nan-probe"

    def run(pipe, concept, options, run, info):
        w = dict(pipe.unet.named_parameters())["conv_in.weight"]
        return Edit(name, info, weights={"conv_in.weight": torch.full_like(w, float("nan"))})

    ERASERS.register(EraserSpec(name, "returns NaN", _NoOptions, run, files=(WEIGHTS,)), "a test")
    try:
        with pytest.raises(ValueError, match="nan-probe eraser made non-finite weights"):
            make_edit(toy, name, "striped")
    finally:
        ERASERS._specs.pop(name)


@dataclass(frozen=True)
class _NoOptions:
    pass


def test_a_model_states_eraser_defaults_per_options_class_and_a_plugin_built_on_one_takes_them(monkeypatch):
    """The toy world's settings reach every eraser by the options classes it is built on: ESD and AC
    their fine-tuning lr, AC and P-AC the anchor pool, every trained eraser the sampling guidance; P-ESD
    keeps its own mask lr; a new eraser on FineTune takes the toy's lr with no entry of its own."""
    from dataclasses import replace

    from workbench.editing.options import FineTune
    from workbench.editing.recipes import defaults
    from workbench.models.toyworld.pipeline import ToyWorldPipeline

    toy = ToyWorldPipeline.__new__(ToyWorldPipeline)  # the class states the defaults; no weights needed
    assert defaults(toy, "esd") == {**ERASERS["esd"].reference, "lr": 1e-4, "guidance": 1.5}
    assert defaults(toy, "ac") == {**ERASERS["ac"].reference, "lr": 1e-4, "guidance": 1.5, "batch": 1, "pool": 128}
    assert defaults(toy, "pesd") == {**ERASERS["pesd"].reference, "guidance": 1.5}
    assert defaults(toy, "pac") == {**ERASERS["pac"].reference, "guidance": 1.5, "batch": 1, "pool": 128}

    @dataclass(frozen=True)
    class TunedOptions(FineTune):
        pass

    spec = replace(ERASERS["esd"], name="tuned-plugin", options=TunedOptions, reference={"lr": 5e-5, "guidance": 3.0})
    monkeypatch.setitem(ERASERS._specs, spec.name, spec)
    assert defaults(toy, spec.name) == {"lr": 1e-4, "guidance": 1.5}


def test_each_attack_takes_its_own_options_and_bad_values_fail_before_any_work(capsys, monkeypatch):
    """`workbench attack`'s flags are the attacks' options dataclasses: a tuple is comma-separated,
    a value out of range or an option of another attack fails before the model loads."""
    from workbench.attacks.methods import ATTACKS
    from workbench.attacks.methods.relearn import RelearnOptions
    from workbench.cli import common, main

    monkeypatch.setattr(common, "load", lambda args: pytest.fail("the model was loaded before the options were checked"))
    base = ["attack", "--edit", "none", "--concept", "striped"]
    assert main([*base, "--attack", "relearn", "--fractions", "0.5,2"]) == 2
    assert "fractions of the budget in (0, 1], not (0.5, 2.0)" in capsys.readouterr().err
    assert main([*base, "--attack", "ringabell", "--where", "prefix"]) == 2
    assert "ringabell takes no --where: its options are --eta, --mutation, --population, --tokens" in capsys.readouterr().err
    assert main([*base, "--attack", "unlearndiff", "--tokens", "0"]) == 2
    assert "at least 1 adversarial token" in capsys.readouterr().err
    assert ATTACKS["relearn"].options is RelearnOptions and RelearnOptions().fractions == (0.25, 0.5, 1.0)
    with pytest.raises(SystemExit):
        main(["attack", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert (
        "--fractions FRACTIONS relearn: fractions of the budget where the ASR is judged, comma-separated (relearn; "
        "default 0.25,0.5,1.0)"
        in helptext
        and "benign 0.001, relearn 0.0001" in helptext
    )  # each attack's own default
