"""What a writer hands the store: one pipeline call's reduced statistics (made by the recorder)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Recording:
    """Reduced statistics of one pipeline call, on the CPU.

    ``stats[site][stat]`` has shape (prompts, branches, steps, neurons) for UNet sites and
    (prompts, branches, neurons) for text sites; ``timesteps`` has one value per UNet call.
    """

    stats: dict[str, dict[str, torch.Tensor]]
    timesteps: list[float]
    tokens: dict[str, int]
    branches: tuple[str, ...]
