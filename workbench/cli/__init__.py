"""The `workbench` command. One module per group of subcommands, each declaring its arguments
(``add(sub, parents)``) beside its run functions: stores.py (record, sites, sets, info, reduce, push,
masks), features.py (samples, sae), erasers.py (erase, attack, reactivation, robustness), reports.py (demo,
ablate, results, table);
common.py holds the shared parent parsers. Here: the parser, and turning errors into one line."""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys

from . import erasers, features, reports, stores
from .common import parents

DESCRIPTION = """Mechanistic-interpretability workbench for text-to-image diffusion models (ConceptPrune).

Typical use:
  workbench record --model toy --prompts texture:striped --out stores/striped.zarr
  workbench sites --model toy
  workbench sets
"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="workbench", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    shared = parents()
    for group in (stores, features, erasers, reports):
        group.add(sub, shared)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "record" and args.out is None and args.prompts:
        from ..recording import DEFAULT_STORES

        args.out = DEFAULT_STORES / (args.prompts[0].replace(":", "_").replace("/", "_") + ".zarr")
    return run(args)


def run(args) -> int:
    """The parsed command run, its errors turned into one line (or, with ``--dask``, its shards as
    tasks on a cluster: cli/cluster.py)."""
    try:
        if getattr(args, "dask", None):
            from .cluster import run_on_dask

            return run_on_dask(args)
        return args.func(args)
    except BrokenPipeError:  # `workbench sets | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, FileNotFoundError) as err:  # StoreError and ModelNotFoundError among them
        if _raised_in_storage(err):  # a codec's checksum or decode error, not a message of ours
            return _undecodable(args, err)
        return _fail(str(err))
    except OSError as err:  # a path that cannot be written or read: permissions, a file where a folder goes, a full disk
        return _fail(_os_message(args, err))
    except Exception as err:
        if not _raised_in_storage(err):
            raise  # a bug: keep its traceback
        return _undecodable(args, err)


def _os_message(args, err: OSError) -> str:
    """What to say of an OSError: the path (the error's, else the command's output) and the fix."""
    path = err.filename or getattr(args, "out", None) or getattr(args, "store", None) or "the output path"
    if err.errno == errno.ENOSPC:
        return (f"no space left on the device while writing {path}: free some space (or choose another --out on a disk with room), "
                "then run the same command again: it resumes where it stopped")  # fmt: skip
    return f"cannot use {path} ({err.strerror or err}): choose another path, or fix its permissions"


def _undecodable(args, err: BaseException) -> int:
    store = getattr(args, "store", None) or getattr(args, "out", None) or "STORE"
    # the codec's first sentence only: what follows it (checksum bytes) depends on the data, not on the fault
    what = re.sub(r"\W*\bb['\"].*", "", str(err).split(". ")[0])[:120]
    return _fail(
        f"a chunk of the store could not be decoded ({type(err).__name__}: {what}): "
        f"run `workbench info --check {store}` to find it and what to do"
    )


def _fail(message: str) -> int:
    """One line on stderr, exit code 2."""
    print(f"workbench: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def _raised_in_storage(err: BaseException) -> bool:
    """Did the error come from reading stored bytes (zarr, its codecs), not from our own code?"""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename if tb is not None else ""
    return any(part in where for part in ("/zarr/", "/numcodecs/", "/zstandard", "/zstd"))


if __name__ == "__main__":
    raise SystemExit(main())
