"""Toy-world evaluation with the oracle: is the concept gone, and did everything else survive?"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .calibration import toy_eval
from .toyworld.draw import draw, indices_of
from .toyworld.grammar import Spec, parse
from .toyworld.oracle import toy_fid


@dataclass
class ToyEval:
    """Oracle readings of held-out prompts: the erased concept's rate on target prompts, the
    degraded-image rate, and every attribute's accuracy on non-target prompts."""

    concept_rate: float
    degraded_rate: float
    other_accuracy: dict[str, float]
    fid: float
    target_images: torch.Tensor
    other_images: torch.Tensor

    def summary(self) -> dict:
        return {"concept_rate": self.concept_rate, "degraded_rate": self.degraded_rate, "other_accuracy": self.other_accuracy, "fid": self.fid}


@torch.no_grad()
def generate(pipe, texts: list[str], seeds: list[int], steps: int = 25, guidance: float = 1.5, batch: int = 32) -> torch.Tensor:
    """Images (N, 3, H, W) in [0, 1], one CPU generator per prompt."""
    out = []
    for i in range(0, len(texts), batch):
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds[i : i + batch]]
        out.append(pipe(texts[i : i + batch], num_inference_steps=steps, guidance_scale=guidance, generator=gens, output_type="pt").images.cpu())
    return torch.cat(out)


def toy_evaluate(pipe, oracle, attribute: str, value: str, n_per: int = 2, steps: int = 25, guidance: float = 1.5) -> ToyEval:
    """Evaluate erasure of ``attribute == value`` (e.g. texture 'striped', shape 'circle') on the
    held-out evaluation prompts (``toy:eval``: every texture x colour x shape, ``n_per`` each)."""
    prompts = list(toy_eval(n_per=n_per))
    truth = [parse(p.text) for p in prompts]
    is_target = [t[attribute] == value for t in truth]
    if not any(is_target):
        raise ValueError(f"no evaluation prompt has {attribute}={value!r}")
    images = generate(pipe, [p.text for p in prompts], [p.seed for p in prompts], steps, guidance)
    pred = oracle.predict(images)
    n = len(prompts)
    tgt = [i for i in range(n) if is_target[i]]
    oth = [i for i in range(n) if not is_target[i]]
    concept_rate = sum(pred[attribute][i] == value for i in tgt) / len(tgt)
    degraded = sum(pred["shape"][i] == "none" for i in range(n)) / n
    acc = {a: sum(pred[a][i] == truth[i][a] for i in oth) / len(oth) for a in ("shape", "colour", "texture", "scene")}
    fid = toy_fid(oracle, images[oth], reference_images([prompts[i] for i in oth]))
    return ToyEval(concept_rate, degraded, acc, fid, images[tgt], images[oth])


def reference_images(prompts) -> torch.Tensor:
    """Ground-truth drawings of the prompts' captions, seeded by their seeds (for the toy FID)."""
    specs = []
    for p in prompts:
        t = parse(p.text)
        specs.append(Spec(t["shape"], t["colour"] or "red", t["texture"] or "plain", t["scene"] or "night"))
    g = torch.Generator().manual_seed(sum(p.seed for p in prompts) % (2**31))
    return draw(**indices_of(specs), generator=g)
