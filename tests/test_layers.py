"""The house rules: imports point down the layers, the store/analysis side knows no toy world,
and reading a store costs no diffusers, transformers or plotly."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import workbench

ROOT = Path(workbench.__file__).parent
#: bottom to top; a module may import its own layer and those below it
LAYERS = ["prompts", "models", "store", "recording", "analysis", "editing", "evaluation", "attacks", "reports", "cli"]
NO_TOY = {"prompts", "store", "recording", "analysis"}


def module_name(path: Path) -> str:
    parts = ("workbench", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """workbench.models.toyworld.draw -> 'models'; workbench._lazy (the facades' helper) and
    workbench.registry (the plugin registries' class), which import nothing of ours, sit below
    every layer; the package's other top files on top."""
    parts = module.split(".")
    if parts[1:2] in (["_lazy"], ["registry"]):
        return "prompts"
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "cli"


def imports(path: Path) -> list[tuple[int, str]]:
    """Every workbench module a file imports, at any depth (function-level imports count too)."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("workbench")]
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level else node.module
            if base and base.startswith("workbench"):
                out.append((node.lineno, base))
    return out


def files():
    return sorted(p for p in ROOT.rglob("*.py"))


def test_every_import_points_down():
    wrong = []
    for path in files():
        here = LAYERS.index(layer_of(module_name(path)))
        for line, target in imports(path):
            if LAYERS.index(layer_of(target)) > here:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} ({layer_of(target)} is above {LAYERS[here]})")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule above can fail: a store module that imports the analysis is caught."""
    bad = ROOT / "store" / "_upward_probe.py"
    bad.write_text("def f():\n    from ..analysis import norms\n")
    try:
        here = LAYERS.index(layer_of(module_name(bad)))
        assert any(LAYERS.index(layer_of(t)) > here for _, t in imports(bad))
    finally:
        bad.unlink()


def test_recording_store_and_analysis_know_no_toy_world():
    wrong = [
        f"{p.relative_to(ROOT)}:{line} imports {t}"
        for p in files()
        if layer_of(module_name(p)) in NO_TOY
        for line, t in imports(p)
        if t.startswith("workbench.models.toyworld")
    ]
    assert not wrong, "\n".join(wrong)


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300).stdout


def test_analysis_and_store_import_no_torch_or_model_libraries():
    out = _fresh(
        "import sys, workbench.analysis, workbench.store\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'plotly') if m in sys.modules))"
    )
    assert out.strip() == "[]"


def test_no_analysis_or_store_module_imports_torch_at_any_depth():
    """The rule above by reading the files: a function-level torch import would pass the fresh
    import but still load torch when that function runs."""
    wrong = []
    for path in files():
        if layer_of(module_name(path)) not in ("store", "analysis"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            wrong += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {n}"
                for n in names
                if n.split(".")[0] == "torch" or n == "safetensors.torch"
            ]
    assert not wrong, "\n".join(wrong)


def test_top_level_names_load_lazily_and_all_resolve():
    out = _fresh(
        "import sys, workbench as wb\n"
        "before = 'diffusers' in sys.modules or 'torch' in sys.modules\n"
        "wb.concept_masks\n"
        "mid = sorted(m for m in ('diffusers', 'transformers', 'plotly') if m in sys.modules)\n"
        "missing = [n for n in wb.__all__ if getattr(wb, n, None) is None]\n"
        "print(before, mid, missing)"
    )
    assert out.strip() == "False [] []"


def test_cli_help_and_prompt_sets_import_no_torch():
    out = _fresh(
        "import sys, contextlib, io\n"
        "from workbench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    main(['sets'])\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'plotly') if m in sys.modules))"
    )
    assert out.strip() == "[]"
