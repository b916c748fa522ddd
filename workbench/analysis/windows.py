"""Step windows: which denoiser calls a mask aggregates. One parser for every caller (API, CLI, ablations)."""

from __future__ import annotations


def step_window(n_steps: int, t_hat: int | None = None, window: str | tuple | list | slice | None = None) -> list[int]:
    """UNet-call indices a mask aggregates: the first ``t_hat`` (the paper), 'all', ('last', n),
    a slice or an explicit list."""
    if window is None or window == "first":
        if t_hat is None:
            raise ValueError("give t_hat (the number of first denoiser calls to aggregate) or a window")
        if not (1 <= int(t_hat) <= n_steps):
            raise ValueError(
                f"t_hat={t_hat} is beyond the recorded steps: this store has {n_steps} denoiser calls per prompt, use 1..{n_steps}"
            )
        return list(range(int(t_hat)))
    if window == "all":
        return list(range(n_steps))
    if isinstance(window, tuple) and len(window) == 2 and window[0] == "last":
        n = int(window[1])
        if not (1 <= n <= n_steps):
            raise ValueError(f"('last', {n}) is beyond the recorded steps: use 1..{n_steps}")
        return list(range(n_steps - n, n_steps))
    if isinstance(window, slice):
        return list(range(n_steps))[window]
    steps = [int(s) for s in window]
    bad = [s for s in steps if not 0 <= s < n_steps]
    if bad:
        raise ValueError(f"steps {bad} are beyond the recorded steps: use 0..{n_steps - 1}")
    return steps


def parse_window(spec: str):
    """'first:T' -> (T, None); 'all' -> (None, 'all'); 'last:N' -> (None, ('last', N)): step_window's arguments."""
    name, _, n = spec.partition(":")
    if name == "first" and n:
        return int(n), None
    if name == "all":
        return None, "all"
    if name == "last" and n:
        return None, ("last", int(n))
    raise ValueError(f"unknown window {spec!r}: use 'first:T', 'all' or 'last:N'")
