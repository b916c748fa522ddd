"""One writer per store: a lock file beside the store that a dead process does not hold forever.

``stores/x.zarr.lock`` is created atomically (a hard link, which fails if it exists) and holds the writer's host, pid
and start time. A second writer finds it and is refused with a message naming the holder. A lock
left by a process that no longer runs on this host is stale and taken over; one from another host
cannot be checked from here, so the message says how to remove it once that job is known dead.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from .core import StoreError, now


def lock_path(store: str | Path) -> Path:
    store = Path(store)
    return store.with_name(store.name + ".lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class WriterLock:
    """Held while a process writes a store: ``with WriterLock(path): ...``."""

    def __init__(self, store: str | Path):
        self.path = lock_path(store)
        self.store = Path(store)
        self.held = False

    def acquire(self) -> WriterLock:
        me = {"host": socket.gethostname(), "pid": os.getpid(), "since": now()}
        # the content is written first and hard-linked into place: the lock file never exists half-written
        tmp = self.path.with_name(f"{self.path.name}.{me['host']}.{me['pid']}.tmp")
        tmp.write_text(json.dumps(me))
        try:
            return self._take(tmp, me)
        finally:
            tmp.unlink(missing_ok=True)

    def _take(self, tmp: Path, me: dict) -> WriterLock:
        for _ in range(3):
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                holder = self._holder()
                if holder is None or (holder.get("host") == me["host"] and not _alive(int(holder.get("pid", -1)))):
                    self.path.unlink(missing_ok=True)  # stale: its writer is gone
                    continue
                if holder.get("host") == me["host"] and int(holder.get("pid", -1)) == me["pid"]:
                    raise StoreError(
                        f"{self.store} is already being written by this process: finish that recording first"
                    ) from None
                raise StoreError(
                    f"{self.store} is being written by process {holder.get('pid')} on {holder.get('host')} since "
                    f"{holder.get('since')}: wait for it to finish, or record into another --out. If that job is dead "
                    f"(on another machine), remove {self.path} and run again: the store resumes where it stopped"
                ) from None
            self.held = True
            return self
        raise StoreError(f"could not take the writer lock {self.path}: remove it if no recording is running, and run again")

    def _holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):  # vanished between our attempt and this read
            return None

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
