"""Store: determinism, resume after a hard kill, extension with new sets, and clear errors."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from workbench.prompts import PromptSet, get
from workbench.recording import record
from workbench.store import StoreError, check_store, open_store

STEPS = 3


def small_set(n=6):
    return PromptSet(get("texture:striped").prompts[:n])


def arrays(path):
    tree = open_store(path)
    out = {
        "text": tree["text"].values.tolist(),
        "seed": tree["seed"].values.tolist(),
        "timestep": tree["timestep"].values.tolist(),
    }
    for site in tree.attrs["sites"]:
        for stat, var in tree[site].data_vars.items():
            out[f"{site}/{stat}"] = var.values
    if "reductions" in tree.children:  # the per-set sums, when current (open_store leaves stale ones out)
        red = tree["reductions"]
        out["reductions/sets"] = [str(s) for s in red["prompt_set"].values]
        for site in red.children:
            for stat, var in red[site].data_vars.items():
                out[f"reductions/{site}/{stat}"] = var.values
    return out


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            assert a[k] == b[k], k


def test_same_seeds_same_store(toy, tmp_path):
    ps = small_set(4)
    record(toy, ps, tmp_path / "a.zarr", steps=STEPS, batch_size=2, progress=False)
    record(toy, ps, tmp_path / "b.zarr", steps=STEPS, batch_size=2, progress=False)
    a, b = arrays(tmp_path / "a.zarr"), arrays(tmp_path / "b.zarr")
    assert_same(a, b)
    site = open_store(tmp_path / "a.zarr").attrs["sites"][0]
    assert np.isfinite(a[f"{site}/sumsq"]).all() and (a[f"{site}/sumsq"] > 0).any()


def test_paired_prompts_share_seeds():
    ps = get("texture:dotted")
    t, r = ps.only("dotted"), ps.only("plain")
    assert len(t) == len(r) == 16
    assert [p.seed for p in t] == [p.seed for p in r]
    assert all(a.text.startswith(b.text) for a, b in zip(t, r))


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # as the test process: float sums depend on the thread count
    from workbench.prompts import PromptSet, get
    from workbench.models import load_pipeline
    from workbench.recording import record
    from workbench import store

    original = store.StoreWriter.write
    calls = {"n": 0}

    def write(self, indices, rec):
        calls["n"] += 1
        if calls["n"] == 3:
            # die half-way through a batch: one site written, the others and `done` not
            site = next(iter(rec.stats))
            self._ensure_arrays(rec)
            for stat, data in rec.stats[site].items():
                self.group[site][stat][indices[0]:indices[-1] + 1] = data
            os.kill(os.getpid(), signal.SIGKILL)
        original(self, indices, rec)

    store.StoreWriter.write = write
    record(load_pipeline("toy"), PromptSet(get("texture:striped").prompts[:{n}]), sys.argv[1], steps={steps}, batch_size=2, progress=False)
    """
)


def test_resume_after_hard_kill_equals_uninterrupted(toy, tmp_path):
    n = 8
    killed = tmp_path / "killed.zarr"
    script = tmp_path / "killer.py"
    script.write_text(KILLER.replace("{n}", str(n)).replace("{steps}", str(STEPS)))
    proc = subprocess.run([sys.executable, str(script), str(killed)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    with pytest.raises(StoreError, match="half-written"):
        open_store(killed)
    partial = open_store(killed, allow_partial=True)
    assert int(partial["done"].values.sum()) == 4  # two batches of two landed before the kill
    record(toy, small_set(n), killed, steps=STEPS, batch_size=2, progress=False)
    full = tmp_path / "full.zarr"
    record(toy, small_set(n), full, steps=STEPS, batch_size=2, progress=False)
    assert_same(arrays(killed), arrays(full))
    assert open_store(killed).attrs["complete"] is True


def test_new_sets_extend_and_repeats_are_not_duplicated(toy, tmp_path):
    path = tmp_path / "s.zarr"
    first = small_set(4)
    record(toy, first, path, steps=STEPS, batch_size=4, progress=False)
    before = arrays(path)
    other = PromptSet(get("texture:dotted").prompts[:2])
    record(toy, first + other, path, steps=STEPS, batch_size=4, progress=False)
    tree = open_store(path)
    assert tree.sizes["prompt"] == 6
    assert list(tree["set"].values[-2:]) == ["dotted", "dotted"]
    after = arrays(path)
    site = tree.attrs["sites"][0]
    np.testing.assert_array_equal(after[f"{site}/sumsq"][:4], before[f"{site}/sumsq"])
    alone = tmp_path / "alone.zarr"
    record(toy, other, alone, steps=STEPS, batch_size=4, progress=False)
    np.testing.assert_array_equal(after[f"{site}/sumsq"][4:], arrays(alone)[f"{site}/sumsq"])


def test_store_of_another_model_or_settings_is_refused(toy, sd15, tmp_path):
    path = tmp_path / "s.zarr"
    ps = small_set(2)
    record(toy, ps, path, steps=STEPS, batch_size=2, progress=False)
    with pytest.raises(StoreError, match="other settings.*model_id|other settings.*weights_hash"):
        record(sd15, ps, path, steps=STEPS, batch_size=2, size=64, progress=False)
    with pytest.raises(StoreError, match="steps: store has 3, now 4"):
        record(toy, ps, path, steps=4, batch_size=2, progress=False)
    with pytest.raises(StoreError, match="holds sites"):
        record(toy, ps, path, sites="ffn1", steps=STEPS, batch_size=2, progress=False)
    with pytest.raises(StoreError, match="statistics"):
        record(toy, ps, path, stats=["sumsq"], steps=STEPS, batch_size=2, progress=False)


def test_bad_inputs_have_clear_errors(toy, tmp_path):
    with pytest.raises(ValueError, match="prompt set is empty"):
        record(toy, PromptSet(), tmp_path / "e.zarr", steps=STEPS, progress=False)
    with pytest.raises(ValueError, match="unknown prompt set"):
        get("painter:someone")
    with pytest.raises(ValueError, match="unknown texture"):
        get("texture:wavy")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="holds no prompts"):
        get(str(empty))
    with pytest.raises(StoreError, match="not a recording store"):
        open_store(tmp_path / "nowhere.zarr")
    (tmp_path / "junk.zarr").mkdir()
    (tmp_path / "junk.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(StoreError, match="corrupt|could not be read"):
        open_store(tmp_path / "junk.zarr")
    with pytest.raises(StoreError, match="not a Zarr store|not a workbench recording"):
        record(toy, small_set(2), tmp_path / "junk.zarr", steps=STEPS, progress=False)


def test_corrupt_chunk_is_reported(toy, tmp_path):
    path = tmp_path / "s.zarr"
    record(toy, small_set(2), path, steps=STEPS, batch_size=2, progress=False)
    site = open_store(path).attrs["sites"][0]
    chunk = next(p for p in (path / site / "sumsq").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(b"garbage")
    with pytest.raises(StoreError, match=f"{site}/sumsq has a corrupt chunk"):
        check_store(path)


def test_prompt_files(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("a red circle\n# comment\ntarget\ta blue square\n")
    ps = get(str(f))
    assert [(p.set, p.text) for p in ps] == [("mine", "a red circle"), ("target", "a blue square")]


def test_a_prompt_files_pairs_share_seeds(tmp_path):
    """Target and reference lines in one file pair up by their position in each set, as two
    files (or a named set) do; unequal sets are warned about."""
    one = tmp_path / "pairs.txt"
    one.write_text("t\ta red circle with stripes\nt\ta blue cross with stripes\nr\ta red circle\nr\ta blue cross\n")
    ps = get(str(one), seed=5)
    seeds = {(p.set, p.text): p.seed for p in ps}
    assert seeds[("t", "a red circle with stripes")] == seeds[("r", "a red circle")] == 5
    assert seeds[("t", "a blue cross with stripes")] == seeds[("r", "a blue cross")] == 6
    (tmp_path / "t.txt").write_text("a red circle with stripes\na blue cross with stripes\n")
    (tmp_path / "r.txt").write_text("a red circle\na blue cross\n")
    two = get(str(tmp_path / "t.txt"), seed=5) + get(str(tmp_path / "r.txt"), seed=5)
    assert [p.seed for p in two] == [p.seed for p in ps]
    uneven = tmp_path / "uneven.txt"
    uneven.write_text("t\ta red circle with stripes\nt\ta blue cross with stripes\nr\ta red circle\n")
    with pytest.warns(UserWarning, match="unequal size"):
        get(str(uneven))


def test_provenance_is_recorded(toy, tmp_path):
    path = record(toy, small_set(2), tmp_path / "s.zarr", steps=STEPS, batch_size=2, progress=False)
    p = open_store(path).attrs["provenance"]
    assert p["model_id"] == "toy" and p["steps"] == STEPS and p["guidance"] == 1.5 and p["image_size"] == 32
    assert p["scheduler"]["class"] == "DDIMScheduler" and len(p["weights_hash"]["unet"]) == 32
    assert {"torch", "diffusers", "zarr"} <= set(p["packages"])
    json.dumps(p)
    assert (Path(path) / "zarr.json").exists() and "consolidated_metadata" in json.loads((Path(path) / "zarr.json").read_text())


def test_a_live_writers_lock_refuses_a_second_and_a_dead_ones_is_taken_over(toy, tmp_path):
    import socket

    from workbench.store import lock_path

    path = tmp_path / "s.zarr"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        lock_path(path).write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid, "since": "now"}))
        with pytest.raises(StoreError, match=f"being written by process {holder.pid} on "):
            record(toy, small_set(2), path, steps=STEPS, batch_size=2, progress=False)
        assert not path.exists()  # refused before the store was touched
    finally:
        holder.kill()
        holder.wait()
    record(toy, small_set(2), path, steps=STEPS, batch_size=2, progress=False)  # its writer is dead: the lock is stale
    assert open_store(path)["done"].values.all() and not lock_path(path).exists()


def test_two_writers_on_one_path_one_is_refused_and_the_store_stays_right(toy, tmp_path):
    """Two real `workbench record` processes started on one store: the second gets the lock error
    (exit 2), the first finishes, and the store equals one recorded alone."""
    from workbench.store import lock_path

    path, alone = tmp_path / "s.zarr", tmp_path / "alone.zarr"
    args = ["record", "--prompts", "texture:striped", "--steps", str(STEPS), "--batch-size", "4", "--quiet", "--out", str(path)]
    # the first writer holds the store after its first batch until the test says go (after the second
    # writer has tried): no timing, so a loaded machine cannot let the first finish too early
    go = tmp_path / "go"
    slow = textwrap.dedent(f"""
        import os, pathlib, time, torch, workbench.recording.run as run
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # as the test process: float sums depend on the thread count
        real, go = run.run_pipe, pathlib.Path({str(go)!r})
        def held(*a, **k):
            out = real(*a, **k)
            for _ in range(6000):
                if go.exists():
                    break
                time.sleep(0.05)
            return out
        run.run_pipe = held
        from workbench.cli import main
        raise SystemExit(main({args!r}))
    """)
    first = subprocess.Popen([sys.executable, "-c", slow], stderr=subprocess.PIPE, text=True)
    for _ in range(6000):  # wait until the first writer holds the lock
        if lock_path(path).exists() or first.poll() is not None:
            break
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=300)
    assert first.poll() is None, "the first writer ended before the second started: the test would prove nothing"
    go.touch()
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.returncode == 2 and "is being written by process" in second.stderr, second.stderr
    record(toy, get("texture:striped"), alone, steps=STEPS, batch_size=4, progress=False)
    assert_same(arrays(path), arrays(alone))


#: kill points spread over the 52 metadata steps of creating and extending the store in
#: tests/helpers/kill_at.py; WORKBENCH_EVERY_KILL=1 tries every one (about 10 minutes)
#: steps 53-64 write the per-set reductions of the two completions
KILLS = list(range(1, 65)) if os.environ.get("WORKBENCH_EVERY_KILL") == "1" else [1, 5, 12, 23, 38, 49, 54, 59, 64]


def test_a_kill_after_any_metadata_step_then_a_rerun_gives_the_uninterrupted_store(toy, tmp_path):
    from workbench.prompts import PromptSet

    helper = Path(__file__).parent / "helpers" / "kill_at.py"
    site = "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2"
    striped = get("texture:striped")
    a, b = PromptSet(striped.prompts[:2]), PromptSet(striped.prompts[16:18])

    def rerun(path):
        for ps in (a, b):
            record(toy, ps, path, sites=site, steps=2, batch_size=2, progress=False)
        return arrays(path)

    reference = rerun(tmp_path / "reference.zarr")
    total = subprocess.run(
        [sys.executable, str(helper), str(tmp_path / "count.zarr"), "0"], capture_output=True, text=True, timeout=300
    )
    assert int(total.stdout.split()[-1]) >= max(KILLS), total.stdout  # every kill point falls inside the run
    # one process imports once and forks a child per kill point (each SIGKILLed at its step)
    killed = subprocess.run([sys.executable, str(helper), str(tmp_path / "k{}.zarr"), ",".join(map(str, KILLS))],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    status = json.loads(killed.stdout.split("\n")[-2])
    for n in KILLS:
        assert status[str(n)] == -9, f"step {n}: the helper was not killed ({status[str(n)]}): {killed.stderr[-500:]}"
        assert_same(rerun(tmp_path / f"k{n}.zarr"), reference)


def _disk_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_a_full_disk_names_the_path_and_the_same_command_then_completes_the_store(toy, tmp_path, capsys):
    """A real full disk: a tmpfs smaller than the store, grown after the failure (root only)."""
    from workbench.cli import main

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    prompts = tmp_path / "p.txt"
    prompts.write_text(
        "".join(f"striped\ta {c} circle with stripes\n" for c in ("red", "blue", "green", "yellow", "purple", "orange"))
    )
    argv = ["record", "--prompts", str(prompts), "--steps", "2", "--batch-size", "2", "--quiet", "--out"]
    assert main([*argv, str(tmp_path / "ref.zarr")]) == 0
    size = _disk_size(tmp_path / "ref.zarr")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size // 2}", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("this machine does not let us mount a tmpfs")
    try:
        out = mnt / "s.zarr"
        capsys.readouterr()
        assert main([*argv, str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("workbench: error: no space left on the device while writing ") and str(mnt) in err, err
        assert "run the same command again: it resumes" in err and len(err.splitlines()) == 1
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        assert main([*argv, str(out)]) == 0
        assert_same(arrays(out), arrays(tmp_path / "ref.zarr"))
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_float16_store_is_analysed_with_the_model_it_was_recorded_from(tmp_path, capsys):
    """Record in float16, then `workbench masks`: the float32 model's weights hash as the store's
    once cast, and the masks use the weights as the recording ran them (float16-rounded)."""
    import torch
    from safetensors.numpy import load_file

    from workbench.analysis import concept_masks
    from workbench.cli import main
    from workbench.models import check_weights, load_pipeline, weights_of

    pairs = tmp_path / "pairs.txt"
    pairs.write_text(
        "striped\ta red circle with stripes\nstriped\ta blue cross with stripes\nplain\ta red circle\nplain\ta blue cross\n"
    )
    store = tmp_path / "h.zarr"
    assert main(["record", "--prompts", str(pairs), "--steps", "2", "--dtype", "float16", "--out", str(store), "--quiet"]) == 0
    tree = open_store(store)
    assert tree.attrs["provenance"]["dtype"] == "float16"
    out = tmp_path / "m.safetensors"
    assert main(["masks", str(store), "--target", "striped", "--reference", "plain", "--t-hat", "2", "--out", str(out)]) == 0
    half = load_pipeline("toy", dtype=torch.float16)
    full = load_pipeline("toy")
    assert check_weights(full, tree.attrs["provenance"]) and check_weights(half, tree.attrs["provenance"])
    w16 = weights_of(half, tree)
    assert all(np.array_equal(w16[s], weights_of(full, tree)[s]) for s in w16)  # rounded as recorded
    want = concept_masks(tree, w16, "striped", "plain", k=2, t_hat=2)
    got = load_file(str(out))
    for s in tree.attrs["sites"]:
        np.testing.assert_array_equal(got[s].astype(bool), want[s]["mask"].values, err_msg=s)
    # weights that really differ are still refused, and the message says the store's dtype
    with torch.no_grad():
        next(full.unet.parameters()).add_(1.0)
    with pytest.raises(
        ValueError, match=r"other weights than this model's \(unet: store \w+, model \w+, compared in the store's float16\)"
    ):
        check_weights(full, tree.attrs["provenance"])


def test_the_chunk_listing_of_the_integrity_check_matches_the_files_on_disk(toy, tmp_path):
    """store.reader._stored_keys leans on zarr's private _shards_initialized and _async_array: on
    a zarr upgrade that changes them this fails loudly, here, rather than the check missing chunks."""
    import zarr

    from workbench.store.reader import _stored_keys

    path = record(toy, small_set(2), tmp_path / "s.zarr", sites="down_blocks.0.*ff.net.2", steps=2, batch_size=1, progress=False)
    group = zarr.open_group(str(path), mode="r")
    site = group.attrs["sites"][0]
    arr = group[site]["sumsq"]
    on_disk = {p.relative_to(Path(path) / site / "sumsq").as_posix() for p in (Path(path) / site / "sumsq").rglob("*")
               if p.is_file() and p.name != "zarr.json"}  # fmt: skip
    assert _stored_keys(arr) == on_disk and len(on_disk) == 2  # one file per prompt chunk
