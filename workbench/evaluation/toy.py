"""Toy-world evaluation with the oracle: is the concept gone, and did everything else survive?"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..models.toyworld.draw import draw, indices_of
from ..models.toyworld.grammar import ATTRIBUTES, COLOURS, SCENES, SHAPES, TEXTURES, Spec
from ..models.toyworld.language import parse
from ..models.toyworld.prompts import toy_eval
from .generation import generate, images_of
from .metrics import fid_kid

__all__ = ["ToyEval", "attribute_of", "eval_images", "generate", "reference_images", "toy_evaluate", "toy_fid"]


@dataclass
class ToyEval:
    """Oracle readings of held-out prompts: the erased concept's rate on target prompts (for a
    union, pooled over the members' target prompts, and per member in ``per_value``), the
    degraded-image rate, and every attribute's accuracy on non-target prompts."""

    concept_rate: float
    degraded_rate: float
    other_accuracy: dict[str, float]
    fid: float
    target_images: torch.Tensor
    other_images: torch.Tensor
    per_value: dict[str, float] = field(default_factory=dict)
    #: mean accuracy of the *other* attributes on the target prompts: does erasing stripes also
    #: change the shape or colour of the striped prompts' images?
    target_other: float = float("nan")
    #: the captions of ``target_images`` and ``other_images``, and the oracle's reading of the judged
    #: attribute on each (for labelled grids: a tile's verdict is the one the rates count)
    target_prompts: list[str] = field(default_factory=list)
    other_prompts: list[str] = field(default_factory=list)
    target_readings: list[str] = field(default_factory=list)
    other_readings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        out = {
            "concept_rate": self.concept_rate,
            "degraded_rate": self.degraded_rate,
            "other_accuracy": self.other_accuracy,
            "fid": self.fid,
        }
        if len(self.per_value) > 1:
            out["per_value"] = self.per_value
        return out


def attribute_of(value: str) -> str:
    """The toy-world attribute a concept name belongs to ('striped' -> 'texture')."""
    for attr, values in ATTRIBUTES.items():
        if value in values:
            return attr
    raise ValueError(
        f"{value!r} is no toy-world concept: choose a shape {SHAPES}, colour {COLOURS}, texture {TEXTURES} or scene {SCENES}"
    )


def eval_images(pipe, n_per: int = 2, steps: int = 25, guidance: float = 1.5) -> torch.Tensor:
    """The held-out evaluation images (``toy:eval`` order), to judge several concepts on one
    generation; memoised by the weights (``generation.images_of``)."""
    return images_of(pipe, list(toy_eval(n_per=n_per)), steps, guidance)


def toy_evaluate(pipe, oracle, attribute: str | None, value: str | list[str], n_per: int = 2, steps: int = 25, guidance: float = 1.5,
                 images: torch.Tensor | None = None) -> ToyEval:  # fmt: skip
    """Evaluate erasure of ``attribute == value`` (e.g. texture 'striped', shape 'circle'; a list
    of values for a union) on the held-out evaluation prompts (``toy:eval``: every texture x colour
    x shape, ``n_per`` each). ``attribute=None`` looks it up. The images are generated once, or
    taken from ``images`` (``eval_images`` of the same model and settings)."""
    values = [value] if isinstance(value, str) else list(value)
    attrs = {attribute_of(v) for v in values} if attribute is None else {attribute}
    if len(attrs) != 1:
        raise ValueError(f"a union must stay within one attribute, got {values} ({sorted(attrs)})")
    attribute = attrs.pop()
    prompts = list(toy_eval(n_per=n_per))
    truth = [parse(p.text) for p in prompts]
    is_target = [t[attribute] in values for t in truth]
    if not any(is_target):
        raise ValueError(f"no evaluation prompt has {attribute} in {values}")
    if images is None:
        images = eval_images(pipe, n_per, steps, guidance)
    elif len(images) != len(prompts):
        raise ValueError(
            f"got {len(images)} images for {len(prompts)} evaluation prompts: pass eval_images(pipe, n_per={n_per}, ...)"
        )
    pred = oracle.predict(images)
    n = len(prompts)
    tgt = [i for i in range(n) if is_target[i]]
    oth = [i for i in range(n) if not is_target[i]]
    shown = [pred[attribute][i] == truth[i][attribute] for i in range(n)]
    concept_rate = sum(shown[i] for i in tgt) / len(tgt)
    per_value = {
        v: sum(shown[i] for i in tgt if truth[i][attribute] == v) / sum(truth[i][attribute] == v for i in tgt) for v in values
    }
    degraded = sum(pred["shape"][i] == "none" for i in range(n)) / n
    acc = {a: sum(pred[a][i] == truth[i][a] for i in oth) / len(oth) for a in ATTRIBUTES}
    fid = toy_fid(oracle, images[oth], reference_images([prompts[i] for i in oth]))
    kept = [a for a in ATTRIBUTES if a != attribute and truth[tgt[0]][a] is not None]
    target_other = sum(pred[a][i] == truth[i][a] for i in tgt for a in kept) / (len(tgt) * len(kept))
    return ToyEval(concept_rate, degraded, acc, fid, images[tgt], images[oth], per_value, target_other,
                   [prompts[i].text for i in tgt], [prompts[i].text for i in oth],
                   [f"{attribute}: {pred[attribute][i]}" for i in tgt], [f"{attribute}: {pred[attribute][i]}" for i in oth])  # fmt: skip


def reference_images(prompts) -> torch.Tensor:
    """Ground-truth drawings of the prompts' captions, seeded by their seeds (for the toy FID)."""
    specs = []
    for p in prompts:
        t = parse(p.text)
        specs.append(Spec(t["shape"], t["colour"] or "red", t["texture"] or "plain", t["scene"] or "night"))
    g = torch.Generator().manual_seed(sum(p.seed for p in prompts) % (2**31))
    return draw(**indices_of(specs), generator=g)


@torch.no_grad()
def toy_fid(oracle, generated: torch.Tensor, reference: torch.Tensor) -> float:
    """Toy-world FID (torchmetrics): the oracle's 128-d features of generated images against drawn
    ground-truth images, the analogue of the paper's COCO FID. Below 128 images a side the
    covariances are singular: compare values only between runs of the same size."""
    oracle.eval()
    dev = next(oracle.parameters()).device
    return fid_kid(reference, generated, features=lambda x: oracle.features(x.to(dev)), dim=128, kid=False)["fid"]
