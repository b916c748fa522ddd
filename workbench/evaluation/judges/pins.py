"""What pins a judge, so that a number can be reproduced (users of the reference tools keep asking
which NudeNet version and threshold gave a table): its spec, the package and version that ran it,
a SHA-256 of its weights and its threshold. ``Judge.pinned()`` returns ``pin(...)``; results keep
it as ``judge_pinned`` (edit.json, attack results, the pages' headers)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def package_version(name: str) -> str | None:
    """The installed version of the distribution ``name`` (None where it is not installed)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, remembered while the file keeps its size and time."""
    p = Path(path)
    st = p.stat()
    return _file_sha256(str(p.resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def module_sha256(module) -> str:
    """SHA-256 over a torch module's state dict (names, dtypes, shapes and bytes, in name order):
    the weights as loaded, whatever file they came from."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def pin(spec: str, package: str, weights_sha256: str | None, threshold: float | None = None, **extra) -> dict:
    """A judge's pin: ``spec``, ``package`` with its installed ``version``, ``weights_sha256``,
    ``threshold`` (None where the judge takes the top label) and any ``extra`` (labels, model)."""
    return {"spec": spec, "package": package, "version": package_version(package), "weights_sha256": weights_sha256,
            "threshold": threshold, **extra}  # fmt: skip


def pin_line(p: dict | None) -> str:
    """One sentence for a page's header: which judge, version, threshold and weights."""
    if not p:
        return "Judge: not pinned (a result written before judges were pinned)."
    thr = "" if p.get("threshold") is None else f", threshold {p['threshold']:g}"
    sha = (p.get("weights_sha256") or "unknown")[:12]
    return f"Judge: `{p['spec']}` ({p['package']} {p.get('version') or '(not installed)'}{thr}, weights sha256 {sha}...)."
