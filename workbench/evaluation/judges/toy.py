"""The toy world's oracle as a judge: the concept is shown when the oracle reads its value for
the concept's attribute; every attribute the prompt names is checked (read by the language world's
parser, which reads the original captions as the original grammar does); shape 'none' is degraded."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...models.toyworld.grammar import ATTRIBUTES
from ...models.toyworld.language import parse
from . import Judge, JudgeError, Verdicts, texts_of


class ToyJudge(Judge):
    name = "toy"

    def __init__(self, concept, oracle=None, device: str | None = None):
        from ...models.toyworld import load_oracle

        value = concept.extra.get("value", concept.name)  # 'lang:striped' reads 'striped'
        attr = next((a for a, values in ATTRIBUTES.items() if value in values), None)
        if attr is None:
            raise JudgeError(
                f"the toy judge reads toy concepts only, not {concept.name!r}: use a texture or shape of the toy world, "
                "or another judge (--judge nudenet, clip:FOLDER, classifier:FOLDER)"
            )
        self.oracle = oracle if oracle is not None else load_oracle(device=device or "cpu")
        self.attribute, self.value = attr, value

    def __call__(self, images, prompts: Sequence) -> Verdicts:
        texts = texts_of(prompts)
        if len(texts) != len(images):
            raise ValueError(f"got {len(images)} images for {len(texts)} prompts: give one prompt per image")
        pred = self.oracle.predict(images)
        truth = [parse(t) for t in texts]
        correct = {a: np.array([pred[a][i] == truth[i][a] for i in range(len(texts))]) for a in ATTRIBUTES}
        return Verdicts(
            shown=np.array([p == self.value for p in pred[self.attribute]]),
            correct=correct,
            degraded=np.array([p == "none" for p in pred["shape"]]),
        )

    def pin(self) -> dict:
        from .pins import module_sha256, pin

        return pin("toy", "workbench", module_sha256(self.oracle))

    def utility(self, images, prompts: Sequence) -> dict[str, float]:
        """The toy FID of the images against drawings of their captions (prompts with seeds)."""
        from ..toy import reference_images, toy_fid

        return {"fid": toy_fid(self.oracle, images, reference_images(list(prompts)))}
