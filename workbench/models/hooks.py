"""Temporary hooks: registered together, removed together on exit, whatever happens inside.

Like baukit's ``Trace``: ``with hooks(Hook(module, fn, pre=True), ...):`` registers each hook and
removes every one of them when the block ends, also when a registration or the block raises. The
recorder, the frozen-example capture, the slot injection and the raw-input capture all use it, so
no hook outlives the code that needed it. ``DenoiserCall.of(args, kwargs)`` reads a denoiser call's
arguments however the pipeline passed them; a hook raises ``StopForward`` to end a generation early
(baukit's ``stop=True``), which ``hooks(..., stop=True)`` catches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class Hook:
    """One forward hook: ``fn(module, args[, kwargs], output)``; ``pre``: a forward pre-hook,
    ``fn(module, args[, kwargs])``; ``with_kwargs``: the call's keyword arguments are passed too."""

    module: nn.Module
    fn: Callable
    pre: bool = False
    with_kwargs: bool = False


class StopForward(Exception):
    """Raised by a hook once it has what it needs: the forward (and the generation around it) ends."""


@dataclass(frozen=True)
class DenoiserCall:
    """A denoiser call's arguments (diffusers' UNet: ``sample``, ``timestep``,
    ``encoder_hidden_states``, SDXL's ``added_cond_kwargs``; its transformers: ``hidden_states``
    for ``sample``), positional or keyword."""

    sample: Any
    timestep: Any
    context: Any
    added: dict | None

    @classmethod
    def of(cls, args: tuple, kwargs: dict) -> DenoiserCall:
        def arg(i: int, name: str):
            return kwargs[name] if name in kwargs else (args[i] if len(args) > i else None)

        sample = arg(0, "hidden_states" if "hidden_states" in kwargs else "sample")
        return cls(sample, arg(1, "timestep"), arg(2, "encoder_hidden_states"), kwargs.get("added_cond_kwargs"))


@contextlib.contextmanager
def hooks(*spec: Hook, stop: bool = False) -> Iterator[list]:
    """Register every hook of ``spec``; yield their handles; remove them all on exit. ``stop``: a
    ``StopForward`` raised inside the block ends it quietly."""
    handles = []
    try:
        for h in spec:
            register = h.module.register_forward_pre_hook if h.pre else h.module.register_forward_hook
            handles.append(register(h.fn, with_kwargs=h.with_kwargs))
        try:
            yield handles
        except StopForward:
            if not stop:
                raise
    finally:
        for handle in handles:
            handle.remove()


LIVE = "_workbench_live_edits"


def live_edits(pipe) -> tuple[str, ...]:
    """The digests of the inference-time edits on ``pipe`` now: hooks that change what it computes
    without changing a weight (feature ablation). ``model_hashes`` names them, so nothing keyed on
    the weights (the evaluation's image memo, a store's provenance) mistakes an edited pipeline
    for the unedited one."""
    return tuple(getattr(pipe, LIVE, ()))


@contextlib.contextmanager
def live_edit(pipe, digest: str) -> Iterator[None]:
    """Mark ``pipe`` as running the inference-time edit ``digest`` inside the block."""
    setattr(pipe, LIVE, (*live_edits(pipe), digest))
    try:
        yield
    finally:
        held = list(live_edits(pipe))
        held.remove(digest)
        setattr(pipe, LIVE, tuple(held))
