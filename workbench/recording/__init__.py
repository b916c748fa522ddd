"""Recording: hooks that reduce activations during generation (hooks.py), and record(), which
runs a pipeline over a prompt set and fills a store (run.py); activation maps of chosen neurons
with the images (maps.py)."""

from ..store.shards import parse_shard, shard_from_env
from .batch import Recording
from .hooks import DEFAULT_STATS, STATS, Recorder, reduce_tokens, run_pipe
from .maps import MapRecorder, record_maps, token_grid
from .run import DEFAULT_STORES, finalise, provenance, record

__all__ = [
    "DEFAULT_STATS",
    "MapRecorder",
    "record_maps",
    "token_grid",
    "DEFAULT_STORES",
    "STATS",
    "Recorder",
    "Recording",
    "finalise",
    "parse_shard",
    "shard_from_env",
    "provenance",
    "record",
    "reduce_tokens",
    "run_pipe",
]
