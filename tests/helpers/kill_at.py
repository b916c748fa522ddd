"""SIGKILL this process right after its N-th store step, in one of two scenarios (N = 0 runs
through and prints how many steps there were). Used by tests/test_store.py and tests/test_shards.py.

    kill_at.py STORE N          record set A, then extend with set B; the steps counted are the
                                metadata steps (creating an array or group, a resize, an attribute
                                write, the creation rename)
    kill_at.py STORE N I/M      record shard I/M of 8 striped prompts; chunk writes
                                (zarr.Array.__setitem__: data or done flags) count as steps too
"""

import os
import signal
import sys

import torch
import zarr
from zarr.core.attributes import Attributes

from workbench.models import load_pipeline
from workbench.prompts import PromptSet, get
from workbench.recording import record

torch.set_num_threads(2)  # as the test process (conftest.py): float sums depend on the thread count

store, n_kill = sys.argv[1], int(sys.argv[2])
shard = sys.argv[3] if len(sys.argv) > 3 else None
count = 0


def counted(fn):
    def wrapper(*a, **k):
        global count
        out = fn(*a, **k)
        count += 1
        if count == n_kill:
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    return wrapper


steps = [(zarr.Group, "create_array"), (zarr.Group, "create_group"), (zarr.Array, "resize"), (Attributes, "update"),
         (Attributes, "__setitem__"), (os, "rename")] + ([(zarr.Array, "__setitem__")] if shard else [])  # fmt: skip
for owner, name in steps:
    setattr(owner, name, counted(getattr(owner, name)))

pipe = load_pipeline("toy")
striped = get("texture:striped")
site = "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2"
if shard:
    record(pipe, PromptSet(striped.prompts[:8]), store, sites=site, steps=2, batch_size=2, progress=False, shard=shard)
else:
    a, b = PromptSet(striped.prompts[:2]), PromptSet(striped.prompts[16:18])
    record(pipe, a, store, sites=site, steps=2, batch_size=2, progress=False)
    record(pipe, b, store, sites=site, steps=2, batch_size=2, progress=False)
print(count)
