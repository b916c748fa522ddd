"""An image classifier as a judge (the paper's ResNet-50 for ImageNette objects): an image shows
the concept when the classifier's top-1 label is the concept's class (its first label, or its name)."""

from __future__ import annotations

from collections.abc import Sequence

from . import Judge, JudgeError, Verdicts


class ClassifierJudge(Judge):
    name = "classifier"

    def __init__(self, concept, model, device: str | None = None):
        from ..metrics import Classifier

        self.classifier = Classifier(model, device=device)
        wanted = [x.lower() for x in (*concept.labels[:1], concept.name, concept.name.replace("_", " "))]
        names = [x.lower() for x in self.classifier.labels]
        found = next((w for w in wanted if w in names), None)
        if found is None:
            raise JudgeError(
                f"the classifier {model} has no class for {concept.name!r} (tried {wanted}; it has "
                f"{self.classifier.labels[:8]}{' ...' if len(names) > 8 else ''}): put the class name first in the concept's labels"
            )
        self.index = names.index(found)
        self.model_name = str(model)

    def pin(self) -> dict:
        from .pins import module_sha256, pin

        return pin(f"classifier:{self.model_name}", "transformers", module_sha256(self.classifier.model), None,
                   label=self.classifier.labels[self.index])  # fmt: skip

    def __call__(self, images, prompts: Sequence) -> Verdicts:
        if len(prompts) != len(images):
            raise ValueError(f"got {len(images)} images for {len(prompts)} prompts: give one prompt per image")
        logits = self.classifier.logits(images)
        prob = logits.softmax(1)[:, self.index].numpy()
        return Verdicts(shown=(logits.argmax(1) == self.index).numpy(), score=prob)
