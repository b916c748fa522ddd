"""Temporary hooks: registered together, removed together on exit, whatever happens inside.

Like baukit's ``Trace``: ``with hooks(Hook(module, fn, pre=True), ...):`` registers each hook and
removes every one of them when the block ends, also when a registration or the block raises. The
recorder, the frozen-example capture, the slot injection and the raw-input capture all use it, so
no hook outlives the code that needed it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

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


@contextlib.contextmanager
def hooks(*spec: Hook) -> Iterator[list]:
    """Register every hook of ``spec``; yield their handles; remove them all on exit."""
    handles = []
    try:
        for h in spec:
            register = h.module.register_forward_pre_hook if h.pre else h.module.register_forward_hook
            handles.append(register(h.fn, with_kwargs=h.with_kwargs))
        yield handles
    finally:
        for handle in handles:
            handle.remove()
