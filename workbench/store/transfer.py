"""Copying a finished store to object storage, a local folder or any fsspec URL so that a partial
copy never opens.

Every file but the root ``zarr.json`` goes first; the root metadata last (on a local file system
written beside and renamed into place, so it is whole or absent). Until it lands the destination is
not a store (``open_store`` says so), so a copy interrupted at any moment is never read as a
recording with missing parts; running the copy again finishes it.
"""

from __future__ import annotations

from pathlib import Path

from .core import StoreError


def push(store: str | Path, url: str, storage_options: dict | None = None, progress: bool = False, batch: int = 256) -> str:
    """Copy a complete local store to ``url``: ``s3://bucket/x.zarr``, ``gs://...``, ``memory://...``,
    ``file:///dir/x.zarr`` or a plain folder path (parent folders are made)."""
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
    local = "file" in fs.protocol or "local" in fs.protocol
    if local and Path(root).resolve() == src.resolve():
        raise StoreError(f"{url} is the store itself: push it to another folder or URL")
    if fs.exists(f"{root}/zarr.json"):
        fs.rm_file(f"{root}/zarr.json")  # re-pushing: the old root goes first, so a half copy never opens
    from tqdm.auto import tqdm

    for lo in tqdm(range(0, len(body), batch), desc="push", disable=not progress, unit_scale=batch):
        chunk = body[lo : lo + batch]
        targets = [f"{root}/{p.relative_to(src).as_posix()}" for p in chunk]
        if local:  # fsspec's local put makes no parent folders (object stores have none to make)
            for folder in sorted({t.rsplit("/", 1)[0] for t in targets}):
                fs.makedirs(folder, exist_ok=True)
        fs.put([str(p) for p in chunk], targets)
    if local:
        fs.makedirs(root, exist_ok=True)
        fs.put_file(str(last), f"{root}/zarr.json.partial")
        fs.mv(f"{root}/zarr.json.partial", f"{root}/zarr.json")  # a rename: whole or absent
    else:
        fs.put_file(str(last), f"{root}/zarr.json")
    return url
