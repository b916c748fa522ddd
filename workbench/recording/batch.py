"""What the recorder hands the store's writer: one pipeline call's reduced statistics, as numpy.

``StoreWriter.write`` takes any object with these four attributes; the store layer does not import
this module (it sits above the store)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Recording:
    """Reduced statistics of one pipeline call, float32 numpy on the CPU.

    ``stats[site][stat]`` has shape (prompts, branches, steps, neurons) for UNet sites and
    (prompts, branches, neurons) for text sites; ``timesteps`` has one value per denoiser call.
    """

    stats: dict[str, dict[str, np.ndarray]]
    timesteps: list[float]
    tokens: dict[str, int]
    branches: tuple[str, ...]
