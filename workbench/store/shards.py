"""A grid's cells as independent tasks over several processes (``--shard I/N``, torchrun's or
accelerate's RANK of WORLD_SIZE): each shard makes its share (``shard_of``), then waits while any
other shard of the same work folder still runs (its lock file, ``store.lock.shard_lock``), then makes
whatever is still missing itself (a killed shard's share), so every shard ends with the whole grid
on disk and any kill resumes."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from .lock import live_shards

T = TypeVar("T")


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
