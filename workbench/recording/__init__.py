"""Recording: hooks that reduce activations during generation (hooks.py), and record(), which
runs a pipeline over a prompt set and fills a store (run.py)."""

from .batch import Recording
from .hooks import DEFAULT_STATS, STATS, Recorder, reduce_tokens, run_pipe
from .run import DEFAULT_STORES, finalise, parse_shard, provenance, record, shard_from_env

__all__ = [
    "DEFAULT_STATS",
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
