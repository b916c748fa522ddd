"""A grid's cells as independent tasks over several processes (``--shard I/N``, torchrun's or
accelerate's RANK of WORLD_SIZE): each shard makes its share (``shard_of``), then waits while any
other shard of the same work folder still runs (its lock file, ``store.lock.shard_lock``), then makes
whatever is still missing itself (a killed shard's share), so every shard ends with the whole grid
on disk and any kill resumes. ``chosen_shard`` reads ``--shard`` or the launcher's environment,
``running_shard`` holds the shard's lock while it runs, ``shared_step`` and ``waiting_lock`` guard
the steps shards share (creating a store, recording a calibration set, training an SAE)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from .lock import WriterLock, live_shards, shard_lock

T = TypeVar("T")


def parse_shard(shard: tuple[int, int] | str | None) -> tuple[int, int] | None:
    """``"i/n"`` or ``(i, n)`` to ``(i, n)``; one shard of one is no shard."""
    if shard is None:
        return None
    try:
        i, n = (int(x) for x in (shard.split("/") if isinstance(shard, str) else shard))
    except (ValueError, TypeError):
        raise ValueError(f"shard {shard!r} is not I/N: give the shard's index and the number of shards, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(
            f"shard {i}/{n} is out of range: the index runs from 0 to N-1 (0/{max(n, 1)} .. {max(n, 1) - 1}/{max(n, 1)})"
        )
    return None if n == 1 else (i, n)


def shard_from_env(env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """The shard torchrun and accelerate give this process (RANK of WORLD_SIZE), or None."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1") or 1)
    return parse_shard((int(env.get("RANK", "0") or 0), world)) if world > 1 else None


def chosen_shard(shard: tuple[int, int] | str | None) -> tuple[int, int] | None:
    """``shard`` as given (``"i/n"`` or ``(i, n)``), else the launcher's (``shard_from_env``), else None."""
    return parse_shard(shard) if shard is not None else shard_from_env()


@contextlib.contextmanager
def running_shard(work: str | Path, shard: tuple[int, int] | None) -> Iterator[None]:
    """Inside, this shard's lock beside ``work`` is held (other shards wait while it is live; a second
    copy of the shard is refused); unsharded, nothing."""
    with shard_lock(work, *shard) if shard else contextlib.nullcontext():
        yield


def waiting_lock(path: str | Path, what: str) -> WriterLock:
    """A lock beside ``path`` for a step several processes may reach at once (``what``: 'calibrating',
    'setup', ...): the first takes it, the others wait for it, then find the step done."""
    return WriterLock(path, role=f"shard {what}", wait=True, name=f"{what}.lock")  # a shard role: others wait


def shared_step(path: str | Path, shard: tuple[int, int] | None, what: str):
    """``waiting_lock`` in a sharded run, nothing unsharded."""
    return waiting_lock(path, what) if shard else contextlib.nullcontext()


def shard_of(items: Sequence[T], shard: tuple[int, int] | None, head: Callable[[T], str] | None = None) -> list[T]:
    """The items shard ``(i, n)`` makes (all for None): those whose group (``head(item)``, default
    the item itself) is the i-th of every n groups in order, so that items that must run in one
    process (a random control and the edit it reads) stay together."""
    if shard is None:
        return list(items)
    i, n = shard
    groups = [head(x) if head else x for x in items]
    order = {g: j for j, g in enumerate(dict.fromkeys(groups))}
    return [x for x, g in zip(items, groups) if order[g] % n == i]


def wait_for_others(work: Path, shard: tuple[int, int] | None, done: Callable[[], bool], poll: float = 2.0) -> bool:
    """Wait until ``done()`` or no other shard of ``work`` runs; True when done. Unsharded: at once."""
    while not done():
        if shard is None or not [s for s in live_shards(work) if s[0] != shard[0]]:
            return False
        time.sleep(poll)
    return True
