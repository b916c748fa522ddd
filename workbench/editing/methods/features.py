"""Feature ablation (SAeUron, Cywinski & Deja, ICML 2025): an SAE at one site, the concept's
features by SAeUron's score (their share of activation on the concept's prompts minus on the
anchors'), scaled at inference where they fire above their mean (editing.features). The SAE is
one trained with ``workbench sae`` on the store's token samples, or, when none is given, one
trained here on the concept's calibration prompts' samples."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import option
from . import FEATURES, EraserSpec, Setting


@dataclass(frozen=True)
class FeatureOptions:
    """The SAE, its site, how many features per window and how far they are scaled."""

    sae: str = option("", "features: an SAE folder of the site (`workbench sae`); empty: train one on the concept's prompts")
    site: str = option("", "features: the site (default: the model family's SAE site, SAeUron's on SD 1.5)")
    features: int = option(8, "features: the concept's top features scaled in each window")
    scale: float = option(-1.0, "features: a chosen feature's activation is multiplied by this where it fires above its "
                          "mean (0 removes it; SAeUron's multiplier is -1)")  # fmt: skip
    windows: int = option(1, "features: windows of denoiser calls, each with its own features")
    sae_k: int = option(32, "features, SAE trained here: active features a token (TopK)")
    sae_expansion: int = option(16, "features, SAE trained here: features per input dimension")
    sae_epochs: int = option(20, "features, SAE trained here: passes over the calibration samples")

    def __post_init__(self):
        for name in ("features", "windows", "sae_k", "sae_expansion", "sae_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"features: {name} must be at least 1, not {getattr(self, name)}")


def run(pipe, concept, options: FeatureOptions, run, info: dict):
    from ..edits import Edit
    from ..features import feature_edit

    arrays, about = feature_edit(pipe, concept, options, run)
    info.update(scale=options.scale, features=options.features, windows=options.windows, **about)
    return Edit(SPEC.name, info, features=arrays)


def settings(size: str, iterations: int) -> list[Setting]:
    ns = (4, 16) if size == "quick" else ((8,) if size == "core" else (2, 4, 8, 16, 32))
    # repeated on other seeds with --every-eraser only (as AC): its seed changes only the SAE trained here
    return [Setting({"features": n}, f"n={n}", main=n == 8 or (size == "quick" and n == 4), column=n == 8, repeat="every")
            for n in ns]  # fmt: skip


SPEC = EraserSpec(
    name="features",
    help="feature ablation (SAeUron): scale the concept's SAE features at one site at inference (features.safetensors)",
    options=FeatureOptions,
    run=run,
    files=(FEATURES,),
    settings=settings,
    order=6,
)
