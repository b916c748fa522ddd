"""Copying a finished store to object storage (or any fsspec URL) so that a partial copy never opens.

Every file but the root ``zarr.json`` goes first; the root metadata last. Until it lands the URL is
not a store (``open_store`` says so), so a copy interrupted at any moment is never read as a
recording with missing parts; running the copy again finishes it.
"""

from __future__ import annotations

from pathlib import Path

from .core import StoreError


def push(store: str | Path, url: str, storage_options: dict | None = None, progress: bool = False, batch: int = 256) -> str:
    """Upload a complete local store to ``url`` (``s3://bucket/x.zarr``, ``gs://...``, ``memory://...``)."""
    import fsspec
    import zarr

    src = Path(store)
    group = zarr.open_group(str(src), mode="r", use_consolidated=False)
    if not group.attrs.get("complete"):
        raise StoreError(f"{src} is not complete: finish the recording (the same `workbench record` command) before pushing it")
    fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    files = sorted(p for p in src.rglob("*") if p.is_file())
    last = src / "zarr.json"
    body = [p for p in files if p != last]
    if fs.exists(f"{root}/zarr.json"):
        fs.rm_file(f"{root}/zarr.json")  # re-pushing: the old root goes first, so a half copy never opens
    from tqdm.auto import tqdm

    for lo in tqdm(range(0, len(body), batch), desc="push", disable=not progress, unit_scale=batch):
        chunk = body[lo : lo + batch]
        fs.put([str(p) for p in chunk], [f"{root}/{p.relative_to(src).as_posix()}" for p in chunk])
    fs.put_file(str(last), f"{root}/zarr.json")
    return url
