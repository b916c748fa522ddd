"""The README's Python examples run as written (in a scratch folder)."""

import json
import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert (tmp_path / "stores" / "striped.zarr").exists()
    assert (tmp_path / "stores" / "striped-masks.safetensors").exists()
    assert (tmp_path / "pruned-model" / "masks.safetensors").exists()
    assert namespace["images"].shape == (1, 3, 32, 32)


def test_readme_commands_on_your_own_checkpoint_run_on_a_tiny_sd1_folder(tmp_path, monkeypatch, capsys):
    """The section's shell lines, as written, with $MODEL and $CLIP pointing at tiny folders and
    the sizes made tiny (2 steps, 2 iterations, 1 attack step, 1 image per prompt pattern)."""
    import shlex

    from workbench.cli import main
    from workbench.models.tiny import save_tiny, save_tiny_clip

    text = README.read_text()
    section = text[text.index("## The papers' experiments on your own checkpoint") :]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    lines = [x for x in block.splitlines() if x.startswith("workbench ")]
    assert len(lines) == 6 and {shlex.split(x)[1] for x in lines} == {"erase", "attack"}
    paths = {"$MODEL": str(save_tiny("sd1", tmp_path / "sd1")), "$CLIP": str(save_tiny_clip(tmp_path / "clip"))}
    monkeypatch.chdir(tmp_path)
    for line in lines:
        for var, path in paths.items():
            line = line.replace(var, path)
        argv = shlex.split(line)[1:]
        assert main([*argv, *_tiny(argv), "--steps", "2", "--n-per", "1", "--quiet"]) == 0, line
        said = capsys.readouterr().out
        assert ("on target prompts" in said) if argv[0] == "erase" else ("attacked images" in said)
    for out in ("edits/vangogh-cp", "edits/vangogh-esd", "edits/vangogh-pesd", "edits/nudity-esd"):
        assert (tmp_path / out / "edit.json").exists() and (tmp_path / out / "summary.json").exists()
    assert (tmp_path / "attacks" / "nudity-esd" / "result.json").exists()


def _tiny(argv: list[str]) -> list[str]:
    """Tiny sizes for a README line: 1 attack step; 2 iterations and t-hat 2 where its eraser takes them."""
    from dataclasses import fields

    from workbench.editing.methods import ERASERS

    if argv[0] == "attack":
        return ["--budget", "1"]
    takes = {f.name for f in fields(ERASERS[argv[argv.index("--method") + 1]].options)}
    return [x for name, flag in (("iterations", "--iterations"), ("t_hat", "--t-hat")) if name in takes for x in (flag, "2")]


def test_readme_commands_on_the_language_world_run(tmp_path, monkeypatch, capsys):
    """The language world's lines, as written, at tiny sizes (2 iterations, 3 steps, budget 1)."""
    import shlex

    from workbench.cli import main

    text = README.read_text()
    section = text[text.index("### Other words for the same concept") :]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    lines = [x for x in block.splitlines() if x.startswith("workbench ")]
    assert len(lines) == 3
    monkeypatch.chdir(tmp_path)
    tiny = {"erase": ["--iterations", "2"], "attack": ["--budget", "1"]}
    for line in lines:
        argv = shlex.split(line)[1:]
        assert main([*argv, *tiny[argv[0]], "--steps", "3", "--n-per", "1", "--quiet"]) == 0, line
        said = capsys.readouterr().out
        assert ("on target prompts" in said) if argv[0] == "erase" else ("attacked images" in said)
    edit = json.loads((tmp_path / "edits" / "ac-lang" / "edit.json").read_text())
    assert edit["concept"] == "lang:striped" and set(edit["weights_hash"]) == {"unet", "text_encoder"}
    # the same edit on the original world: refused by the text encoder's hash
    assert main(["attack", "--attack", "softprompt", "--edit", "edits/ac-lang", "--concept", "striped", "--budget", "1",
                 "--steps", "3", "--n-per", "1", "--quiet"]) == 2  # fmt: skip
    assert "made for other weights (text_encoder" in capsys.readouterr().err


def test_every_relative_link_in_the_readme_and_docs_points_at_a_file():
    """Markdown links and images to repository files resolve (a page renamed or not yet generated
    shows up here, not as a dead link on GitHub)."""
    root = README.parent
    pages = [README, *sorted((root / "docs").glob("*.md")), *sorted((root / "benchmarks").glob("*.md"))]
    dead, seen = [], 0
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+://|#|mailto:", target):
                continue
            seen += 1
            if not (page.parent / target.split("#", 1)[0]).exists():
                dead.append(f"{page.relative_to(root)} -> {target}")
    assert seen > 20 and not dead, dead


def test_readme_commands_on_diffusion_transformers_run_on_tiny_folders(tmp_path, monkeypatch, capsys):
    """The section's lines, as written, with $FLUX, $SD35 and $CLIP pointing at tiny folders, the
    image side 16 and the sizes made tiny (2 steps, 2 iterations, 1 attack step)."""
    import shlex

    from workbench.cli import main
    from workbench.models.tiny import save_tiny_clip
    from workbench.models.tiny_transformers import save_tiny_dit

    text = README.read_text()
    section = text[text.index("## Diffusion transformers") :]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    lines = [x for x in block.splitlines() if x.startswith("workbench ")]
    assert [shlex.split(x)[1] for x in lines] == ["sites", "record", "masks", "erase", "erase", "attack"]
    paths = {"$FLUX": str(save_tiny_dit("flux", tmp_path / "flux")), "$SD35": str(save_tiny_dit("sd3", tmp_path / "sd3")),
             "$CLIP": str(save_tiny_clip(tmp_path / "clip"))}  # fmt: skip
    monkeypatch.chdir(tmp_path)
    for line in lines:
        for var, path in paths.items():
            line = line.replace(var, path)
        argv = [("16" if a == "512" else a) for a in shlex.split(line)[1:]]
        extra = {"record": ["--steps", "2", "--quiet"], "masks": ["--t-hat", "2"], "sites": []}.get(argv[0])
        if extra is None:
            extra = [*_tiny(argv), "--steps", "2", "--n-per", "1", "--quiet"]
        assert main([*argv, *extra]) == 0, line
        said = capsys.readouterr().out
        if argv[0] == "sites":
            assert "mlp.single " in said and ":image" in said
    assert (tmp_path / "stores" / "flux-vangogh.zarr").exists()
    assert (tmp_path / "edits" / "flux-vangogh-masks.safetensors").exists()
    for out in ("edits/flux-vangogh-cp", "edits/sd35-vangogh-esd"):
        assert (tmp_path / out / "edit.json").exists() and (tmp_path / out / "summary.json").exists()
    assert (tmp_path / "attacks" / "sd35-vangogh-esd" / "result.json").exists()


def test_readme_features_lines_run_on_the_toy_world(tmp_path, monkeypatch, capsys):
    """The features section's lines as written, made small (2 steps, 1 epoch, 1 image a pattern)."""
    import shlex

    from workbench.cli import main

    text = README.read_text()
    section = text[text.index("## Features beside neurons") :]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    lines = [x for x in block.splitlines() if x.startswith("workbench ")]
    assert [shlex.split(x)[1] for x in lines] == ["record", "samples", "sae", "erase"]
    monkeypatch.chdir(tmp_path)
    extra = {"record": ["--steps", "2", "--quiet"], "samples": ["--quiet"], "sae": ["--epochs", "1", "--quiet"],
             "erase": ["--steps", "2", "--n-per", "1", "--sae-epochs", "1", "--quiet"]}  # fmt: skip
    for line in lines:
        argv = shlex.split(line)[1:]
        assert main([*argv, *extra[argv[0]]]) == 0, line
        said = capsys.readouterr().out
        if argv[0] == "sae":
            assert "explained variance" in said and "SAE.load_from_disk" in said
    sae = tmp_path / "stores" / "striped-f.zarr" / "saes" / "up_blocks.1.attentions.1.transformer_blocks.0"
    assert json.loads((sae / "cfg.json").read_text())["architecture"] == "topk"
    assert json.loads((tmp_path / "edits" / "striped-features" / "edit.json").read_text())["sae"] == str(
        sae.relative_to(tmp_path)
    )
