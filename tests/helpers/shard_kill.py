"""Record shard I/N of a few striped prompts and SIGKILL this process after its K-th store step:
a metadata step (creating an array or group, a resize, an attribute write, the creation rename) or
a chunk write (zarr.Array.__setitem__: data or done flags). K = 0 runs through and prints the count.
Used by tests/test_shards.py."""

import os
import signal
import sys

import zarr
from zarr.core.attributes import Attributes

from workbench.models import load_pipeline
from workbench.prompts import PromptSet, get
from workbench.recording import record

store, shard, n_kill = sys.argv[1], sys.argv[2], int(sys.argv[3])
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


for owner, name in ((zarr.Group, "create_array"), (zarr.Group, "create_group"), (zarr.Array, "resize"),
                    (zarr.Array, "__setitem__"), (Attributes, "update"), (Attributes, "__setitem__"), (os, "rename")):  # fmt: skip
    setattr(owner, name, counted(getattr(owner, name)))

pipe = load_pipeline("toy")
prompts = PromptSet(get("texture:striped").prompts[:8])
site = "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2"
record(pipe, prompts, store, sites=site, steps=2, batch_size=2, progress=False, shard=shard)
print(count)
