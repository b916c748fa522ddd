"""Sharded recording: N processes fill one store, equal to one process; kills and misuse are safe."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import zarr
from test_store import arrays, assert_same

from workbench.prompts import PromptSet, get
from workbench.recording import finalise, parse_shard, record, shard_from_env
from workbench.store import StoreError, open_store
from workbench.store.lock import lock_path

SITE = "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2"
HELPER = Path(__file__).parent / "helpers" / "kill_at.py"
#: the same thread count everywhere: another one sums in another order (floats differ by ~1e-6)
ENV = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}


def eight():
    return PromptSet(get("texture:striped").prompts[:8])


def one_process(toy, path, prompts=None):
    record(toy, prompts or eight(), path, sites=SITE, steps=2, batch_size=2, progress=False)
    return arrays(path)


def cli(*args):
    return [sys.executable, "-m", "workbench", "record", "--model", "toy", *args]


def test_four_processes_with_shard_i_of_4_equal_one_process(toy, tmp_path):
    path = tmp_path / "sharded.zarr"
    args = ["--prompts", "texture:striped", "--steps", "2", "--batch-size", "2", "--quiet", "--out", str(path)]
    procs = [subprocess.Popen(cli(*args, "--shard", f"{i}/4"), env=ENV, stderr=subprocess.PIPE, text=True) for i in range(4)]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()
    tree = open_store(path)
    assert tree.attrs["complete"] and "plan" not in tree.attrs  # the last shard finalised
    assert zarr.open_group(str(path))["done"].chunks == (2,)  # flags chunked like the data: no shared file
    assert not list(tmp_path.glob("*.lock"))
    reference = tmp_path / "one.zarr"
    record(toy, get("texture:striped"), reference, steps=2, batch_size=2, progress=False)
    assert_same(arrays(path), arrays(reference))


def test_torchrun_launches_shards_from_rank_and_world_size(toy, tmp_path):
    path = tmp_path / "torchrun.zarr"
    torchrun = Path(sys.executable).with_name("torchrun")
    run = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "workbench", "record", "--model", "toy",
         "--prompts", "texture:striped", "--sites", SITE, "--steps", "2", "--batch-size", "2", "--quiet", "--out", str(path)],
        env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "shard 0/2" in run.stderr or "shard 1/2" in run.stderr  # two shards ran, one finished first
    assert_same(arrays(path), one_process(toy, tmp_path / "one.zarr", get("texture:striped")))


def test_shard_from_env_and_parse_shard():
    assert shard_from_env({"RANK": "3", "WORLD_SIZE": "4"}) == (3, 4)
    assert shard_from_env({}) is None and shard_from_env({"RANK": "0", "WORLD_SIZE": "1"}) is None
    assert parse_shard("1/2") == (1, 2) and parse_shard((0, 1)) is None
    with pytest.raises(ValueError, match="out of range"):
        parse_shard("4/4")
    with pytest.raises(ValueError, match="is not I/N"):
        parse_shard("two")


def test_one_shard_records_only_its_chunks_and_finalise_names_the_missing_shard(toy, tmp_path):
    path = tmp_path / "s.zarr"
    record(toy, eight(), path, sites=SITE, steps=2, batch_size=2, progress=False, shard="1/2")
    tree = open_store(path, allow_partial=True)
    # the planner recorded chunk 0 to make the arrays; shard 1 owns chunks 1 and 3
    assert tree["done"].values.tolist() == [True, True, True, True, False, False, True, True]
    assert not tree.attrs["complete"]
    with pytest.raises(StoreError, match="--shard 0/2 again"):
        finalise(path)
    done = subprocess.run(cli("--finalise", str(path)), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--shard 0/2" in done.stderr
    record(toy, eight(), path, sites=SITE, steps=2, batch_size=2, progress=False, shard="0/2")
    assert open_store(path).attrs["complete"]
    assert finalise(path) == path  # idempotent on a complete store
    assert_same(arrays(path), one_process(toy, tmp_path / "one.zarr"))


#: kill points among the ~53 store steps of tests/helpers/kill_at.py in shard mode: creating the skeleton (1-18),
#: adding the prompts (19-29), the planner's arrays (30-43) and its chunk (44-46), the shard's own
#: chunk (48-50) and the finalising attributes; WORKBENCH_EVERY_KILL=1 tries every one
KILLS = list(range(1, 54)) if os.environ.get("WORKBENCH_EVERY_KILL") == "1" else [2, 18, 26, 36, 44, 48, 50]


def test_a_shard_killed_at_any_step_then_rerun_gives_the_one_process_store(toy, tmp_path):
    reference = one_process(toy, tmp_path / "one.zarr")
    total = subprocess.run([sys.executable, str(HELPER), str(tmp_path / "count.zarr"), "0", "0/2"], env=ENV,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert total.returncode == 0, total.stderr[-1000:]
    assert int(total.stdout.split()[-1]) > max(KILLS)  # every kill point falls inside the run
    # one process imports once and forks a child per kill point (each SIGKILLed at its step)
    killed = subprocess.run([sys.executable, str(HELPER), str(tmp_path / "k{}.zarr"), ",".join(map(str, KILLS)), "0/2"], env=ENV,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    status = json.loads(killed.stdout.split("\n")[-2])
    for n in KILLS:
        path = tmp_path / f"k{n}.zarr"
        assert status[str(n)] == -9, f"step {n}: not killed ({status[str(n)]}): {killed.stderr[-500:]}"
        for shard in ("1/2", "0/2"):  # the other shard runs meanwhile; the killed one is run again
            record(toy, eight(), path, sites=SITE, steps=2, batch_size=2, progress=False, shard=shard)
        assert open_store(path).attrs["complete"], n
        assert_same(arrays(path), reference)


def hold(path: Path, name: str, role: str):
    """A live process that holds one of the store's locks."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    lock_path(path, name).write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid, "role": role, "since": "now"}))
    return holder


def test_running_shards_refuse_an_unsharded_writer_another_shard_count_and_a_second_copy(toy, tmp_path):
    path = tmp_path / "s.zarr"
    holder = hold(path, "shard-0-of-2.lock", "shard 0/2")
    try:
        with pytest.raises(StoreError, match=r"being recorded by shard 0/2 .*wait for the shards to finish"):
            record(toy, eight(), path, sites=SITE, steps=2, batch_size=2, progress=False)
        with pytest.raises(StoreError, match=r"run with --shard I/2"):
            record(toy, eight(), path, sites=SITE, steps=2, batch_size=2, progress=False, shard="0/3")
        with pytest.raises(StoreError, match=rf"being written by process {holder.pid} .*\(shard 0/2\)"):
            record(toy, eight(), path, sites=SITE, steps=2, batch_size=2, progress=False, shard="0/2")
        assert not path.exists()  # all refused before the store was touched
        # shard 1/2 joins (the live shard 0/2 plans nothing here): it plans and records its chunks
        record(toy, eight(), path, sites=SITE, steps=2, batch_size=2, progress=False, shard="1/2")
        with pytest.raises(StoreError, match="not in .* plan: give every shard the same prompt sets"):
            record(toy, PromptSet(get("texture:striped").prompts[:10]), path, sites=SITE, steps=2, batch_size=2,
                   progress=False, shard="1/2")  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    record(toy, eight(), path, sites=SITE, steps=2, batch_size=2, progress=False, shard="0/2")  # stale lock taken over
    assert_same(arrays(path), one_process(toy, tmp_path / "one.zarr"))


def test_a_store_with_shared_done_chunks_is_refused_for_sharding(toy, tmp_path):
    path = tmp_path / "old.zarr"
    one_process(toy, path)
    g = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    done = g["done"][:]
    del g["done"]  # as stores made before sharded recording kept them: one chunk of 4096 flags
    g.create_array("done", shape=done.shape, chunks=(4096,), dtype="bool", dimension_names=["prompt"], fill_value=False)
    g["done"][:] = done
    with pytest.raises(StoreError, match="done flags in chunks of 4096 .*record it with one process"):
        record(toy, eight(), path, sites=SITE, steps=2, batch_size=2, progress=False, shard="0/2")
    assert open_store(path)["done"].values.all()  # refused, the store untouched
