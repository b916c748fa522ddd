"""The README's Python examples run as written (in a scratch folder)."""

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
