"""'damp': remove the concept's direction from every cross-attention key and value projection.

The direction d is the mean difference between the end-of-text embeddings of the concept's
target prompts and their anchors (unit length); each projection W becomes W (I - strength d d^T),
so the concept's text no longer moves the keys and values along d. A closed form, like UCE's, in
a dozen lines: an example of an eraser plugin, not a method from a paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.editing.methods import WEIGHTS, EraserSpec, Setting


@dataclass(frozen=True)
class DampOptions:
    strength: float = field(default=1.0, metadata={"help": "damp: share of the concept direction removed (0-1)"})


def run(pipe, concept, options: DampOptions, run, info: dict):
    import torch

    from workbench.editing import Edit
    from workbench.editing.examples import conditioning

    if not 0 <= options.strength <= 1:
        raise ValueError(f"damp: strength={options.strength} must lie in [0, 1]")
    target, _ = conditioning(pipe, [p.text for p in concept.target])
    anchor, _ = conditioning(pipe, [p.text for p in concept.anchor])
    d = (target.mean(1) - anchor.mean(1)).mean(0)
    d = d / d.norm()
    keep = torch.eye(len(d)) - options.strength * torch.outer(d, d)
    weights = {}
    for name, module in pipe.unet.named_modules():
        if name.endswith(("attn2.to_k", "attn2.to_v")):
            w = module.weight.detach().float().cpu()
            weights[f"{name}.weight"] = (w @ keep).to(module.weight.dtype)
    info.update(strength=options.strength, parameters=sum(w.numel() for w in weights.values()))
    return Edit(SPEC.name, info, weights=weights)


def settings(size: str, iterations: int) -> list[Setting]:
    return [Setting({"strength": 1.0}, "strength=1", main=True, column=True, repeat="never")]


SPEC = EraserSpec(name="damp", help="damp (example plugin): remove the concept's text direction from the cross-attention keys "
                  "and values", options=DampOptions, run=run, files=(WEIGHTS,), settings=settings, seeded=False)  # fmt: skip
