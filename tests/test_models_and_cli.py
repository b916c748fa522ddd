"""Real loading code on tiny saved models, clear errors for missing weights, and the CLI."""

import pytest
import torch

from workbench.cli import main
from workbench.models import ModelNotFoundError, catalogue, load_pipeline, weights_hash
from workbench.store import open_store


def test_load_saved_sd15_and_sdxl_folders(sd15, sdxl, tmp_path):
    for name, pipe in (("sd15", sd15), ("sdxl", sdxl)):
        pipe.save_pretrained(tmp_path / name)
        back = load_pipeline(str(tmp_path / name))
        assert type(back).__name__ == type(pipe).__name__
        assert weights_hash(back.unet) == weights_hash(pipe.unet)
        assert [s.name for s in catalogue(back)] == [s.name for s in catalogue(pipe)]


def test_missing_weights_say_what_to_do(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not download weights.*huggingface-cli download"):
        load_pipeline("some-org/not-on-this-machine")
    with pytest.raises(ModelNotFoundError, match="folder"):
        (tmp_path / "empty").mkdir()
        load_pipeline(str(tmp_path / "empty"))
    for where in (str(tmp_path / "a" / ("long-name-" * 12)), "./nowhere", "~/nowhere"):  # a path, however long: never a hub id
        with pytest.raises(ModelNotFoundError, match="there is no model folder .* save_pretrained"):
            load_pipeline(where)


def test_full_size_unet_builder_has_sd15_shape():
    from workbench.models.tiny import sd15_unet_random

    with torch.device("meta"):
        unet = sd15_unet_random()
    ffn2 = [m for n, m in unet.named_modules() if n.endswith("ff.net.2")]
    # DESIGN.md's figures for SD1.5: 16 FFN-2 sites, 49,920 neurons, 49.56 M weights
    assert len(ffn2) == 16 and sum(m.in_features for m in ffn2) == 49920
    assert sum(m.weight.numel() for m in ffn2) == 49_561_600


def test_cli_help_and_record(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["record", "--help"])
    assert "--prompts" in capsys.readouterr().out
    out = tmp_path / "s.zarr"
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\na red circle with dots\n")
    assert main(["record", "--prompts", str(prompts), "--out", str(out), "--steps", "2", "--quiet", "--device", "cpu"]) == 0
    tree = open_store(out)
    assert tree.sizes["prompt"] == 2 and tree.sizes["step"] == 2
    assert (
        main(["record", "--prompts", str(prompts), "--out", str(out), "--steps", "2", "--sites", "ffn9", "--device", "cpu"]) == 2
    )
    assert "matches no layer" in capsys.readouterr().err
    assert main(["sets"]) == 0 and "texture:striped" in capsys.readouterr().out
    assert main(["sites", "--device", "cpu"]) == 0 and "ff.net.2" in capsys.readouterr().out
    assert main(["info", str(out)]) == 0 and '"complete": true' in capsys.readouterr().out


def test_load_weights_reads_the_sites_from_the_folder_without_a_model(toy):
    import numpy as np

    from workbench.analysis import load_weights
    from workbench.models import select, weights_of
    from workbench.models.toyworld import WEIGHTS

    names = [s.name for s in select(toy, ["ffn2", "text.fc2"])]
    direct, loaded = weights_of(toy, names), load_weights(WEIGHTS, names)
    assert list(loaded) == names
    for n in names:
        np.testing.assert_array_equal(loaded[n], direct[n])
    with pytest.raises(ValueError, match="another model"):
        load_weights(WEIGHTS, ["down_blocks.7.ff.net.2"])


def test_a_saved_copy_of_the_toy_world_keeps_its_sampling_defaults(toy, tmp_path, capsys):
    """Guidance 1.5 travels with the model's class, not with the name 'toy'; --quiet prints nothing."""
    from workbench.editing import export_pruned
    from workbench.models import generation_defaults

    folder = export_pruned(toy, {}, tmp_path / "copy")
    assert generation_defaults(load_pipeline(str(folder))) == {"guidance": 1.5, "steps": 25}
    assert generation_defaults(object()) == {"guidance": 7.5, "steps": 50}
    f = tmp_path / "p.txt"
    f.write_text("a red circle\n")
    capsys.readouterr()
    rc = main(
        ["record", "--model", str(folder), "--prompts", str(f), "--steps", "2", "--out", str(tmp_path / "s.zarr"), "--quiet"]
    )
    assert rc == 0 and capsys.readouterr().err == ""
    assert open_store(tmp_path / "s.zarr").attrs["provenance"]["guidance"] == 1.5


def test_html_pages_escape_every_user_string(tmp_path):
    import plotly.graph_objects as go

    from workbench.reports.demo import write_report
    from workbench.reports.plots import write_html

    evil = "<script>alert(1)</script>"
    fig = go.Figure(go.Bar(x=[evil], y=[1]))
    fig.update_layout(title=evil)
    page = write_html(tmp_path / "a.html", evil, "", [(evil, fig)], provenance=evil).read_text()
    reading = {"concept_rate": 0.5, "degraded_rate": 0.0, "other_accuracy": {"shape": 1.0}, "fid": 1.0}
    summary = {"concept": evil, "k": 2.0, "t_hat": 3, "density": 0.01, "density_of_unet": 0.001, "seconds": 1,
               "before": reading, "after": reading, "random_control": reading}  # fmt: skip
    report = write_report(tmp_path / "r.html", summary, [(evil, fig)], {"prompt": evil, "set": evil}).read_text()
    for text in (page, report):
        assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
