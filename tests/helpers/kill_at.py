"""Record set A, then extend with set B, SIGKILL-ing this process right after its N-th store
metadata step (creating an array or group, resizing, an attribute write, the creation rename).
N = 0 runs through and prints how many steps there were. Used by tests/test_store.py."""

import os
import signal
import sys

import zarr
from zarr.core.attributes import Attributes

from workbench.models import load_pipeline
from workbench.prompts import PromptSet, get
from workbench.recording import record

store, n_kill = sys.argv[1], int(sys.argv[2])
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


zarr.Group.create_array = counted(zarr.Group.create_array)
zarr.Group.create_group = counted(zarr.Group.create_group)
zarr.Array.resize = counted(zarr.Array.resize)
Attributes.update = counted(Attributes.update)
Attributes.__setitem__ = counted(Attributes.__setitem__)
os.rename = counted(os.rename)

pipe = load_pipeline("toy")
striped = get("texture:striped")
a, b = PromptSet(striped.prompts[:2]), PromptSet(striped.prompts[16:18])
site = "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2"
record(pipe, a, store, sites=site, steps=2, batch_size=2, progress=False)
record(pipe, b, store, sites=site, steps=2, batch_size=2, progress=False)
print(count)
