"""SIGKILL a recording right after its N-th store step, in one of two scenarios (N = 0 runs
through and prints how many steps there were). Used by tests/test_store.py and tests/test_shards.py.

    kill_at.py STORE N          record set A, then extend with set B; the steps counted are the
                                metadata steps (creating an array or group, a resize, an attribute
                                write, the creation rename)
    kill_at.py STORE N I/M      record shard I/M of 8 striped prompts; chunk writes
                                (zarr.Array.__setitem__: data or done flags) count as steps too
    kill_at.py STORE N samples  record 3 striped prompts (not counted), then take their token
                                samples at two sites; metadata steps and chunk writes count

N may be a comma-separated list and STORE a template with ``{}``: then this process imports once
and forks one child per N (recording into STORE.format(N), killed at its N-th step), and prints
``{N: exit status}`` as JSON (-9: killed). The children start torch's threads themselves: the
parent never computes before forking.
"""

import json
import os
import signal
import sys

import torch
import zarr
from zarr.core.attributes import Attributes

from workbench.models import load_pipeline
from workbench.prompts import PromptSet, get
from workbench.recording import record

# as the test process (conftest.py): float sums depend on the thread count
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

store, kills = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
shard = sys.argv[3] if len(sys.argv) > 3 else None
count, n_kill = 0, 0


def counted(fn):
    def wrapper(*a, **k):
        global count
        out = fn(*a, **k)
        count += 1
        if count == n_kill:
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    return wrapper


SAMPLE_SITES = ["down_blocks.0.attentions.0.transformer_blocks.0", "mid_block.attentions.0.transformer_blocks.0.ff.net.2"]


def run(path: str, n: int) -> None:
    global n_kill
    n_kill = n
    pipe = load_pipeline("toy")
    striped = get("texture:striped")
    site = "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2"
    if shard == "samples":
        record(pipe, PromptSet(striped.prompts[:3]), path, sites=site, steps=2, batch_size=3, progress=False)
    steps = [(zarr.Group, "create_array"), (zarr.Group, "create_group"), (zarr.Array, "resize"), (Attributes, "update"),
             (Attributes, "__setitem__"), (os, "rename")] + ([(zarr.Array, "__setitem__")] if shard else [])  # fmt: skip
    for owner, name in steps:
        setattr(owner, name, counted(getattr(owner, name)))
    if shard == "samples":
        from workbench.recording.samples import SampleOptions, record_samples

        record_samples(pipe, path, SampleOptions(sites=SAMPLE_SITES, tokens=16, batch_size=1), progress=False)
    elif shard:
        record(pipe, PromptSet(striped.prompts[:8]), path, sites=site, steps=2, batch_size=2, progress=False, shard=shard)
    else:
        a, b = PromptSet(striped.prompts[:2]), PromptSet(striped.prompts[16:18])
        record(pipe, a, path, sites=site, steps=2, batch_size=2, progress=False)
        record(pipe, b, path, sites=site, steps=2, batch_size=2, progress=False)


if "{}" not in store:
    run(store, kills[0])
    print(count)
else:
    status = {}
    for n in kills:
        pid = os.fork()
        if pid == 0:
            try:
                run(store.format(n), n)
            finally:
                os._exit(0)
        _, st = os.waitpid(pid, 0)
        status[n] = -os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
    print(json.dumps(status))
