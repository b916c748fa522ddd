"""`workbench masks` on the toy world: the verb reading weights from the model folder's files
against the same verb loading the pipeline, and the analysis alone, side by side in one run.

    python benchmarks/masks_verb.py [--repeats 3]

Records 'texture:striped' (16 pairs, 25 steps) once; then, alternated, each `workbench masks` as a
fresh process (what a user waits for: start-up included): 'files' on the store as recorded (its
``weights_digest`` lets the verb check and read the weights from safetensors, no torch), 'pipeline'
on a copy whose provenance lacks the digest (a store recorded before digests: the verb loads the
model, as it always did); and, in this process, the analysis alone (``concept_masks`` with the
weights in hand). Medians of the repeats; the masks of both verbs are checked equal.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def timed_verb(store: Path, out: Path) -> float:
    argv = [sys.executable, "-m", "workbench", "masks", str(store), "--target", "striped", "--reference", "plain",
            "--out", str(out)]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    import workbench as wb
    from workbench.analysis import load_masks
    from workbench.analysis.weights import weights_from_files
    from workbench.editing.prune import as_dict

    tmp = Path(tempfile.mkdtemp(prefix="masks-verb-"))
    store = wb.record(wb.load_pipeline("toy"), wb.prompt_set("texture:striped"), tmp / "s.zarr", progress=False)
    old = tmp / "old.zarr"
    shutil.copytree(store, old)
    meta = json.loads((old / "zarr.json").read_text())
    del meta["attributes"]["provenance"]["weights_digest"]
    (old / "zarr.json").write_text(json.dumps(meta))
    files, pipe, alone = [], [], []
    tree = wb.open_store(store)
    weights, _ = weights_from_files(tree)
    for _ in range(a.repeats):
        files.append(timed_verb(store, tmp / "files.safetensors"))
        pipe.append(timed_verb(old, tmp / "pipe.safetensors"))
        t0 = time.perf_counter()
        wb.concept_masks(tree, weights, "striped", "plain", k=2, t_hat=10)
        alone.append(time.perf_counter() - t0)
    x, y = as_dict(load_masks(tmp / "files.safetensors")), as_dict(load_masks(tmp / "pipe.safetensors"))
    assert set(x) == set(y) and all(np.array_equal(x[s], y[s]) for s in x), "the two verbs' masks differ"
    med = {k: statistics.median(v) for k, v in (("files", files), ("pipeline", pipe), ("analysis", alone))}
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("| `workbench masks` reads the weights from | seconds (median) | repeats |")
    print("| --- | --- | --- |")
    print(f"| the model folder's files (store with a digest) | {med['files']:.2f} | {', '.join(f'{t:.2f}' for t in files)} |")
    print(f"| the loaded pipeline (store without one) | {med['pipeline']:.2f} | {', '.join(f'{t:.2f}' for t in pipe)} |")
    print(f"| (the analysis alone, in process) | {med['analysis']:.2f} | {', '.join(f'{t:.2f}' for t in alone)} |")
    print(f"masks equal: yes; files / pipeline = {med['files'] / med['pipeline']:.2f}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
