"""Zero-shot CLIP as a judge (style and object concepts): an image shows the concept when, of the
concept's labels, CLIP finds the first (the concept's own) most similar; ``score`` is that
label's softmax probability. ``utility`` is the CLIP score of images against their prompts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from . import Judge, JudgeError, Verdicts, texts_of


class ClipJudge(Judge):
    name = "clip"

    def __init__(self, concept, model: str | None = None, device: str | None = None):
        from ..metrics import CLIP_DEFAULT, ClipScorer

        if len(concept.labels) < 2:
            raise JudgeError(
                f"the clip judge needs at least two labels for {concept.name!r}, the concept's first "
                '(labels = ["a painting by Van Gogh", "a photo"] in the concept file, docs/concepts.md)'
            )
        self.labels = list(concept.labels)
        self.scorer = ClipScorer(model or CLIP_DEFAULT, device=device)
        self._labels_embedded: torch.Tensor | None = None

    def pin(self) -> dict:
        from .pins import module_sha256, pin

        model = self.scorer.model
        return pin(f"clip:{model.name_or_path}", "transformers", module_sha256(model), None, labels=self.labels)

    @torch.no_grad()
    def label_embeddings(self) -> torch.Tensor:
        """(labels, D) the labels' normalised text embeddings, computed on first use."""
        from ..metrics import features_of

        if self._labels_embedded is None:
            s = self.scorer
            tok = s.processor(text=self.labels, return_tensors="pt", padding=True, truncation=True)
            txt = features_of(s.model.get_text_features(input_ids=tok["input_ids"].to(s.device),
                                                       attention_mask=tok["attention_mask"].to(s.device)))  # fmt: skip
            self._labels_embedded = torch.nn.functional.normalize(txt.float(), dim=-1)
        return self._labels_embedded

    @torch.no_grad()
    def probabilities(self, images) -> np.ndarray:
        """(images, labels) CLIP's zero-shot probabilities."""
        from ..metrics import features_of, uint8_hwc

        s = self.scorer
        txt = self.label_embeddings()
        arr, out = uint8_hwc(images), []
        for i in range(0, len(arr), s.batch):
            px = s.processor(images=list(arr[i : i + s.batch]), return_tensors="pt")["pixel_values"].to(s.device)
            img = torch.nn.functional.normalize(features_of(s.model.get_image_features(pixel_values=px)).float(), dim=-1)
            out.append(torch.softmax(s.model.logit_scale.exp().float() * img @ txt.T, dim=-1).cpu().numpy())
        return np.concatenate(out)

    def __call__(self, images, prompts: Sequence) -> Verdicts:
        if len(prompts) != len(images):
            raise ValueError(f"got {len(images)} images for {len(prompts)} prompts: give one prompt per image")
        p = self.probabilities(images)
        return Verdicts(shown=p.argmax(1) == 0, score=p[:, 0])

    def utility(self, images, prompts: Sequence) -> dict[str, float]:
        return {"clip_score": float(np.mean(self.scorer.similarity(images, texts_of(prompts))))}
