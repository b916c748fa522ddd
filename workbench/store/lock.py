"""Who may write a store: lock files beside it that a dead process does not hold forever.

``stores/x.zarr.lock`` is created atomically (a hard link, which fails if it exists) and holds the
writer's host, pid, role and start time. An unsharded writer holds it for the whole recording; a
second writer finds it and is refused with a message naming the holder. Sharded writers hold
``stores/x.zarr.shard-I-of-N.lock`` while they run and take ``x.zarr.lock`` only for the short
steps that change the store's shape or marks (planning, finalising), waiting for one another there.
A lock left by a process that no longer runs on this host is stale and taken over; one from
another host cannot be checked from here, so the message says how to remove it once that job is
known dead.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

from .core import StoreError, now


def lock_path(store: str | Path, name: str = "lock") -> Path:
    store = Path(store)
    return store.with_name(f"{store.name}.{name}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _held(holder: dict | None) -> bool:
    """Does this lock content name a writer that may still run? (another host's: assumed so)"""
    if holder is None:
        return False
    return holder.get("host") != socket.gethostname() or _alive(int(holder.get("pid", -1)))


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # vanished, or not ours
        return None


class WriterLock:
    """Held while a process writes a store: ``with WriterLock(path): ...``.

    ``role`` is shown to whoever is refused; ``wait=True`` waits (polling) while the holder is a
    sharded writer in a short planning or finalising step, and refuses an unsharded holder.
    ``name`` picks another lock file beside the store (the shard locks).
    """

    def __init__(self, store: str | Path, role: str = "writer", wait: bool = False, name: str = "lock"):
        self.path = lock_path(store, name)
        self.store = Path(store)
        self.role = role
        self.wait = wait
        self.held = False

    def acquire(self) -> WriterLock:
        me = {"host": socket.gethostname(), "pid": os.getpid(), "role": self.role, "since": now()}
        # the content is written first and hard-linked into place: the lock file never exists half-written
        tmp = self.path.with_name(f"{self.path.name}.{me['host']}.{me['pid']}.tmp")
        tmp.write_text(json.dumps(me))
        try:
            return self._take(tmp, me)
        finally:
            tmp.unlink(missing_ok=True)

    def _take(self, tmp: Path, me: dict) -> WriterLock:
        stale = 0
        while True:
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                holder = _read(self.path)
                if not _held(holder):
                    self.path.unlink(missing_ok=True)  # stale: its writer is gone
                    stale += 1
                    if stale > 3:
                        raise StoreError(
                            f"could not take the writer lock {self.path}: remove it if no recording is running, and run again"
                        ) from None
                    continue
                if holder.get("host") == me["host"] and int(holder.get("pid", -1)) == me["pid"]:
                    raise StoreError(
                        f"{self.store} is already being written by this process: finish that recording first"
                    ) from None
                if self.wait and str(holder.get("role", "")).startswith("shard"):
                    time.sleep(0.2)  # another shard plans or finalises: a short step
                    continue
                raise StoreError(
                    f"{self.store} is being written by process {holder.get('pid')} on {holder.get('host')} "
                    f"({holder.get('role', 'writer')}) since {holder.get('since')}: wait for it to finish, or record "
                    f"into another --out. If that job is dead (on another machine), remove {self.path} and run again: "
                    "the store resumes where it stopped"
                ) from None
            self.held = True
            return self

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def shard_lock(store: str | Path, shard: int, shards: int) -> WriterLock:
    """The lock a sharded writer holds while it runs: a second copy of one shard is refused."""
    return WriterLock(store, role=f"shard {shard}/{shards}", name=f"shard-{shard}-of-{shards}.lock")


_SHARD = re.compile(r"\.shard-(\d+)-of-(\d+)\.lock$")


def live_shards(store: str | Path) -> list[tuple[int, int, dict]]:
    """Sharded writers of ``store`` that may still run: ``(shard, shards, holder)`` each."""
    store = Path(store)
    out = []
    for path in sorted(store.parent.glob(f"{store.name}.shard-*-of-*.lock")):
        m = _SHARD.search(path.name)
        holder = _read(path)
        if m and _held(holder):
            out.append((int(m.group(1)), int(m.group(2)), holder))
    return out
