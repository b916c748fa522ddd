"""Scale: per-set reductions, stores on an S3 server and analysis on dask.distributed.

The S3 tests start moto's real HTTP server on a free port (the same wire protocol as S3, through
s3fs); nothing is mocked inside the process."""

import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr

from workbench.analysis import concept_masks, overlap_per_step, sweep
from workbench.cli import main
from workbench.models import weights_of
from workbench.prompts import PromptSet, get
from workbench.recording import record
from workbench.store import StoreError, open_store, push

STEPS = 3
CONCEPTS = {"striped": ("striped", "plain"), "dotted": ("dotted", "plain")}


def sets(*names, n=3):
    """n prompts of each named set ('plain': the reference), in that order."""
    out = []
    for name in names:
        pool = get(f"texture:{'striped' if name == 'plain' else name}").prompts
        out += [p for p in pool if p.set == name][:n]
    return PromptSet(out)


@pytest.fixture(scope="module")
def store(toy, tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "s.zarr"
    record(toy, sets("striped", "dotted", "plain"), path, steps=STEPS, batch_size=3, progress=False)
    return path


def same_masks(a, b):
    assert a.attrs["sites"] == b.attrs["sites"]
    for s in a.attrs["sites"]:
        np.testing.assert_array_equal(a[s]["mask"].values, b[s]["mask"].values, err_msg=s)
    assert sum(int(a[s]["mask"].sum()) for s in a.attrs["sites"]) > 0


def all_analyses(tree, weights):
    return {
        "masks": concept_masks(tree, weights, ["striped", "dotted"], "plain", k=5, t_hat=2),
        "sweep": sweep(tree, weights, "striped", "plain", ks=(2, 10), t_hats=(1, 3)),
        "overlap": overlap_per_step(tree, weights, CONCEPTS, k=5),
    }


def assert_same_analyses(a, b):
    same_masks(a["masks"], b["masks"])
    for s in a["sweep"].attrs["sites"]:
        np.testing.assert_array_equal(a["sweep"][s]["packed"].values, b["sweep"][s]["packed"].values, err_msg=s)
    np.testing.assert_array_equal(a["overlap"].values, b["overlap"].values)


def test_reductions_are_written_on_completion_and_give_the_raw_stores_results(toy, store):
    tree = open_store(store)
    assert "reductions" in tree.children
    assert list(tree["reductions"]["prompt_set"].values) == ["striped", "dotted", "plain"]
    w = weights_of(toy, tree)
    assert_same_analyses(all_analyses(tree, w), all_analyses(tree.drop_nodes("reductions"), w))
    # the sums are those of the raw store: one site, one set, checked by hand
    site = tree.attrs["sites"][0]
    raw = tree[site]["sumsq"].values[np.asarray(tree["set"].values == "dotted")].astype(np.float64).sum(0)
    np.testing.assert_allclose(tree["reductions"][site]["sumsq"].sel(prompt_set="dotted").values, raw, rtol=1e-12)


def test_stale_or_half_written_reductions_are_never_read(toy, store, tmp_path):
    path = tmp_path / "s.zarr"
    shutil.copytree(store, path)
    group = zarr.open_group(str(path), mode="r+")
    fingerprint = group["reductions"].attrs["fingerprint"]
    group["reductions"].attrs["fingerprint"] = "9:someone-elses"
    tree = open_store(path)
    assert "reductions" not in tree.children  # a fingerprint that does not match: raw statistics read
    del group["reductions"].attrs["fingerprint"]  # killed before the commit: the same
    assert "reductions" not in open_store(path).children
    # extending the store with a new set: the old sums are stale until the recording completes
    record(toy, sets("striped", "dotted", "plain", "checkered"), path, steps=STEPS,
           batch_size=3, progress=False)  # fmt: skip
    tree = open_store(path)
    assert tree["reductions"].attrs["fingerprint"] != fingerprint
    assert list(tree["reductions"]["prompt_set"].values) == ["striped", "dotted", "plain", "checkered"]
    wts = weights_of(toy, tree)
    same_masks(concept_masks(tree, wts, "checkered", "plain", k=5, t_hat=2),
               concept_masks(tree.drop_nodes("reductions"), wts, "checkered", "plain", k=5, t_hat=2))  # fmt: skip


def test_an_old_store_is_read_from_its_raw_statistics_and_upgraded_by_reduce(toy, store, tmp_path, capsys):
    path = tmp_path / "old.zarr"
    shutil.copytree(store, path)
    shutil.rmtree(path / "reductions")  # a store recorded before reductions existed
    tree = open_store(path)
    assert "reductions" not in tree.children
    w = weights_of(toy, tree)
    before = concept_masks(tree, w, "striped", "plain", k=5, t_hat=2)
    assert main(["info", str(path)]) == 0
    assert f"workbench reduce {path}" in capsys.readouterr().err
    assert main(["reduce", str(path), "--quiet"]) == 0
    tree = open_store(path)
    assert "reductions" in tree.children
    same_masks(before, concept_masks(tree, w, "striped", "plain", k=5, t_hat=2))
    assert main(["info", str(path)]) == 0
    assert "workbench reduce" not in capsys.readouterr().err


def test_reduce_refuses_a_half_written_store(toy, store, tmp_path, capsys):
    path = tmp_path / "half.zarr"
    shutil.copytree(store, path)
    zarr.open_group(str(path), mode="r+")["done"][2] = False
    assert main(["reduce", str(path), "--quiet"]) == 2
    assert "reductions need a complete store (1 of 9 prompts not recorded)" in capsys.readouterr().err


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the step runs, no handler of ours catches it."""


def test_a_kill_at_any_step_of_replacing_reductions_leaves_a_store_that_reads_right(toy, tmp_path, monkeypatch):
    """Every unlink, rmdir and file write of reduce_store (replacing current reductions) is a kill
    point; after each: the store opens, analysis gives the raw store's numbers, `info --check`
    passes and says truthfully whether reductions are present, and one `reduce` completes it."""
    import zarr.storage._local as local

    from workbench.store import check_store, reduce_store

    path = tmp_path / "one.zarr"
    record(toy, sets("striped", "plain", n=2), path, sites="down_blocks.1.*ff.net.2", steps=2, batch_size=2, progress=False)
    site = zarr.open_group(str(path), mode="r").attrs["sites"][0]
    want = open_store(path)["reductions"][site]["sumsq"].values.copy()
    count = {"n": 0, "kill": 0}

    def counted(fn):
        def step(*a, **k):
            out = fn(*a, **k)
            count["n"] += 1
            if count["n"] == count["kill"]:
                raise Killed
            return out

        return step

    for mod, name in ((os, "unlink"), (os, "rmdir"), (local, "_put")):
        monkeypatch.setattr(mod, name, counted(getattr(mod, name)))
    reduce_store(str(path))
    total = count["n"]
    assert total > 10  # the old group's files, then the new group's
    for kill in range(1, total + 1):
        copy = tmp_path / f"k{kill}.zarr"
        shutil.copytree(path, copy)
        count.update(n=0, kill=kill)
        with pytest.raises(Killed):
            reduce_store(str(copy))
        count["kill"] = 0
        tree = open_store(copy)
        check_store(copy)  # info --check: nothing damaged that analysis would read
        if "reductions" in tree.children:
            np.testing.assert_array_equal(tree["reductions"][site]["sumsq"].values, want)
        raw = tree[site]["sumsq"].values[np.asarray(tree["set"].values == "striped")].astype(np.float64).sum(0)
        np.testing.assert_allclose(want[0], raw, rtol=1e-12)
        reduce_store(str(copy))  # the next run completes it
        np.testing.assert_array_equal(open_store(copy)["reductions"][site]["sumsq"].values, want)
        shutil.rmtree(copy)


def test_a_committed_group_missing_its_set_names_is_refused_not_read(toy, store, tmp_path, capsys):
    path = tmp_path / "s.zarr"
    shutil.copytree(store, path)
    shutil.rmtree(path / "reductions" / "prompt_set")
    with pytest.raises(StoreError, match="per-set reductions are incomplete .*reductions/prompt_set.*workbench reduce"):
        open_store(path)
    assert main(["info", str(path), "--check"]) == 2
    assert main(["reduce", str(path), "--quiet"]) == 0
    assert list(open_store(path)["reductions"]["prompt_set"].values) == ["striped", "dotted", "plain"]


# -- object storage -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server on a free port, with the environment s3fs/botocore read."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "log"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem().mkdir("workbench-test")
        yield env
    finally:
        proc.terminate()
        proc.wait(10)
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def test_masks_from_an_s3_store_equal_masks_from_the_local_copy(toy, store, s3, tmp_path):
    assert main(["push", str(store), "s3://workbench-test/s.zarr", "--quiet"]) == 0
    remote = open_store("s3://workbench-test/s.zarr")
    assert "reductions" in remote.children
    local = open_store(store)
    w = weights_of(toy, local)
    assert_same_analyses(all_analyses(remote, w), all_analyses(local, w))
    same_masks(concept_masks(remote.drop_nodes("reductions"), w, "striped", "plain", k=5, t_hat=2),
               concept_masks(local, w, "striped", "plain", k=5, t_hat=2))  # fmt: skip
    # the CLI reads the URL too, in another process with the same environment
    out = subprocess.run([sys.executable, "-m", "workbench", "info", "s3://workbench-test/s.zarr"], capture_output=True, text=True,
                         env={**os.environ, **s3})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert '"striped": 3' in out.stdout and '"reductions": true' in out.stdout


def test_a_half_pushed_store_is_not_a_store(store, s3, monkeypatch):
    import s3fs

    real, calls = s3fs.S3FileSystem._put, []

    async def fails_on_the_third_batch(self, *args, **kwargs):  # the connection drops part-way
        calls.append(1)
        if len(calls) == 3:
            raise ConnectionError("connection lost")
        return await real(self, *args, **kwargs)

    s3fs.S3FileSystem.clear_instance_cache()  # instances made now take the patched method
    monkeypatch.setattr(s3fs.S3FileSystem, "_put", fails_on_the_third_batch)
    with pytest.raises(ConnectionError):
        push(store, "s3://workbench-test/half.zarr", batch=16)
    assert s3fs.S3FileSystem().ls("workbench-test/half.zarr")  # some of it is there...
    with pytest.raises(StoreError, match="is not a recording store .*workbench push"):
        open_store("s3://workbench-test/half.zarr")  # ...but it does not open as a store
    monkeypatch.setattr(s3fs.S3FileSystem, "_put", real)
    push(store, "s3://workbench-test/half.zarr", batch=16)  # running it again finishes it
    assert open_store("s3://workbench-test/half.zarr").sizes["prompt"] == 9


def test_pushing_an_unfinished_store_is_refused(store, s3, tmp_path):
    path = tmp_path / "u.zarr"
    shutil.copytree(store, path)
    zarr.open_group(str(path), mode="r+").attrs["complete"] = False
    with pytest.raises(StoreError, match="is not complete: finish the recording"):
        push(path, "s3://workbench-test/u.zarr")


@pytest.mark.parametrize("form", ["folder", "file-url"])
def test_push_to_a_folder_or_a_file_url_gives_the_same_store(toy, store, tmp_path, form):
    dest = tmp_path / "copies" / "nested" / "s.zarr"
    url = str(dest) if form == "folder" else dest.as_uri()
    assert main(["push", str(store), url, "--quiet"]) == 0
    assert not list(dest.rglob("*.partial"))
    a, b = open_store(url), open_store(store)
    w = weights_of(toy, b)
    assert_same_analyses(all_analyses(a, w), all_analyses(b, w))
    for site in b.attrs["sites"]:
        np.testing.assert_array_equal(a[site]["sumsq"].values, b[site]["sumsq"].values)
    files = sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(dest) for p in dest.rglob("*") if p.is_file())


def test_a_push_to_a_folder_killed_before_its_root_is_no_store_and_a_rerun_finishes_it(store, tmp_path, monkeypatch):
    import fsspec.implementations.local as flocal

    dest = tmp_path / "half.zarr"
    real = flocal.LocalFileSystem.put_file

    def dies_at_the_root(self, lpath, rpath, *a, **k):
        if str(rpath).endswith("zarr.json.partial") and str(rpath).count("/") == str(dest).count("/") + 1:
            raise Killed  # the body is copied, the root metadata not yet
        return real(self, lpath, rpath, *a, **k)

    monkeypatch.setattr(flocal.LocalFileSystem, "put_file", dies_at_the_root)
    with pytest.raises(Killed):
        push(store, str(dest), batch=16)
    assert (dest / "reductions" / "zarr.json").exists() and not (dest / "zarr.json").exists()
    with pytest.raises(StoreError, match="is not a recording store"):
        open_store(dest)
    monkeypatch.setattr(flocal.LocalFileSystem, "put_file", real)
    push(store, str(dest))
    assert open_store(dest).sizes["prompt"] == 9
    with pytest.raises(StoreError, match="is the store itself"):
        push(store, str(store))


# -- dask.distributed -----------------------------------------------------------------------------


def test_analysis_under_a_dask_distributed_cluster_equals_the_default_scheduler(toy, store):
    from dask.distributed import Client, LocalCluster, get_task_stream

    tree = open_store(store).drop_nodes("reductions")  # the raw statistics: the dask graph the workers run
    w = weights_of(toy, tree)
    alone = all_analyses(tree, w)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client, get_task_stream(client) as stream:
            on_cluster = all_analyses(tree, w)
    workers = {t["worker"] for t in stream.data}
    assert len(workers) >= 1 and len(stream.data) > 10  # the reads and sums ran on the cluster's worker processes
    assert_same_analyses(alone, on_cluster)


def test_reduce_store_runs_on_a_dask_cluster_one_task_per_raw_chunk_and_sums_by_hand(toy, tmp_path, monkeypatch):
    """Chunks that straddle sets, sets summed in groups of one (a tiny budget): on a LocalCluster the
    workers run one read-and-sum task per raw chunk holding a group's prompts, and every sum equals a
    numpy sum of the raw statistics per set."""
    from dask.distributed import Client, LocalCluster, get_task_stream

    from workbench.store import reductions

    path = tmp_path / "mixed.zarr"
    record(
        toy, sets("striped", "dotted", "plain", n=3), path, steps=STEPS, batch_size=2, progress=False
    )  # chunks [0,1] [2,3] ...
    group = zarr.open_group(str(path), mode="r+")
    site = group.attrs["sites"][0]
    per_set = 8 * int(np.prod(group[site]["sumsq"].shape[1:]))
    monkeypatch.setattr(reductions, "BUDGET", per_set)  # one set a group, one group a batch
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client, get_task_stream() as stream:
            reductions.reduce_store(str(path))
            workers = set(client.scheduler_info()["workers"])
    parts = [t for t in stream.data if str(t["key"]).startswith(reductions.PART)]
    # each set's 3 prompts lie in 2 of the 5 chunks (sets at prompts 0-2, 3-5, 6-8)
    arrays = sum(1 for s in group.attrs["sites"] for _ in group[s].arrays())
    assert len(parts) == arrays * 3 * 2
    assert {t["worker"] for t in parts} <= workers  # read and summed in the workers' processes
    tree = open_store(path)
    labels = tree["set"].values
    for s in tree.attrs["sites"]:
        for stat in tree[s].data_vars:
            for name in ("striped", "dotted", "plain"):
                by_hand = tree[s][stat].values[labels == name].astype(np.float64).sum(0)
                got = tree["reductions"][s][stat].sel(prompt_set=name).values
                np.testing.assert_allclose(got, by_hand, rtol=1e-12, err_msg=f"{s}/{stat}/{name}")
