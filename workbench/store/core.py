"""Shared by the store's writer and reader: schema version, errors, small helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

SCHEMA = 1
NEURON_BLOCK = 2048
#: provenance keys that must match for a recording to be continued in the same store
MUST_MATCH = ("model_id", "weights_hash", "scheduler", "steps", "guidance", "image_size", "dtype")


class StoreError(ValueError):
    """A store that cannot be used as asked; the message says why and what to do."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def short(names: list[str]) -> str:
    """'[a, b, ...] (n)': a long list of site names, shortened for a message."""
    return f"[{', '.join(names[:2])}{', ...' if len(names) > 2 else ''}] ({len(names)})"


def jsonable(v):
    """A value as Zarr attributes can hold it: dicts and sequences kept, scalars as they are,
    anything else (dtypes, enums, paths) as its string."""
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return str(v)


def consolidate(path: str | Path) -> None:
    """Write consolidated metadata (fast opens); zarr warns that v3 has no spec for it yet, which
    is known and harmless here: readers that ignore it still open the store."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(str(path))


def zarr_store(path: str | Path, storage_options: dict | None = None, read_only: bool = False):
    """(what zarr opens, what messages name): a local folder as its path string, a URL
    (``s3://``, ``gs://``, ``memory://``, ...) as an fsspec-backed zarr store; ``file://`` is local."""
    text = str(path)
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    if "://" not in text:
        return text, Path(text)
    from zarr.storage import FsspecStore

    try:
        store = FsspecStore.from_url(text, storage_options=storage_options, read_only=read_only)
    except (ImportError, ValueError) as err:
        raise StoreError(
            f"{text}: no fsspec filesystem for this URL ({err}); install its package (s3fs for s3://, gcsfs for gs://)"
        ) from err
    return store, text
