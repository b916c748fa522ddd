"""Judges: images and their prompts in, per-image verdicts out, behind one interface.

A judge is called as ``judge(images, prompts) -> Verdicts``: for each image whether it shows the
concept being erased (``shown``), where the judge can tell, whether it shows each attribute its
prompt asks for (``correct``: the toy oracle's shape, colour, texture and scene) and whether it is
degraded (no recognisable content), and a continuous ``score`` of the concept. ``utility(images,
prompts)`` gives the judge's image-quality figures (the toy FID, a CLIP score).

``make_judge(spec, concept)`` builds one from a short spec: ``toy`` (the toy world's oracle),
``nudenet[:THRESHOLD]`` (NudeNet's shipped detector), ``clip[:FOLDER]`` (zero-shot CLIP over the
concept's labels), ``classifier:FOLDER`` (an image classifier saved with save_pretrained).
docs/concepts.md says what each needs and measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ...prompts import Prompt
    from ...prompts.concepts import Concept

#: the judge kinds ``make_judge`` knows, with what each takes after the colon
KINDS = {
    "toy": "the toy world's oracle (toy concepts only)",
    "nudenet": "NudeNet's shipped detector; nudenet:0.45 sets the score threshold (default 0.6)",
    "clip": "zero-shot CLIP over the concept's labels; clip:FOLDER loads CLIP from a folder (default: openai/clip-vit-large-patch14 "
    "from the Hugging Face cache)",
    "classifier": "classifier:FOLDER, an image classifier saved with save_pretrained (the concept's first label is its class)",
}


class JudgeError(ValueError):
    """A judge spec that cannot be built for this concept; the message says what to change."""


@dataclass
class Verdicts:
    """Per-image readings of one judge (module docstring)."""

    shown: np.ndarray
    correct: dict[str, np.ndarray] = field(default_factory=dict)
    degraded: np.ndarray | None = None
    score: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.shown)

    def take(self, idx) -> Verdicts:
        """The verdicts of the images at ``idx``."""
        idx = np.asarray(idx, dtype=int)
        return Verdicts(
            self.shown[idx],
            {a: v[idx] for a, v in self.correct.items()},
            None if self.degraded is None else self.degraded[idx],
            None if self.score is None else self.score[idx],
        )


class Judge:
    """The interface: ``name``, ``__call__(images, prompts) -> Verdicts`` and ``utility``."""

    name: str = "judge"

    def __call__(self, images, prompts: Sequence[str | Prompt]) -> Verdicts:
        raise NotImplementedError

    def utility(self, images, prompts: Sequence[str | Prompt]) -> dict[str, float]:
        """Image-quality figures of the images of unrelated prompts (none by default)."""
        return {}


def texts_of(prompts: Sequence[str | Prompt]) -> list[str]:
    return [p if isinstance(p, str) else p.text for p in prompts]


def make_judge(spec: str, concept: Concept, device: str | None = None) -> Judge:
    """The judge ``spec`` (``KINDS``) for ``concept``."""
    kind, _, arg = str(spec).partition(":")
    if kind == "toy":
        from .toy import ToyJudge

        return ToyJudge(concept, device=device)
    if kind == "nudenet":
        from .nudenet import NudeNetJudge

        try:
            threshold = float(arg) if arg else 0.6
        except ValueError:
            raise JudgeError(f"judge {spec!r}: the NudeNet threshold must be a number, e.g. nudenet:0.45") from None
        return NudeNetJudge(threshold=threshold)
    if kind == "clip":
        from .clip import ClipJudge

        return ClipJudge(concept, arg or None, device=device)
    if kind == "classifier":
        from .classifier import ClassifierJudge

        if not arg:
            raise JudgeError(
                "judge 'classifier' needs a folder: classifier:FOLDER (an image classifier saved with save_pretrained)"
            )
        return ClassifierJudge(concept, arg, device=device)
    raise JudgeError(
        f"unknown judge {spec!r}: use one of {', '.join(KINDS)} ({'; '.join(f'{k}: {v}' for k, v in KINDS.items())})"
    )


def judge_of(judge, concept: Concept, device: str | None = None) -> Judge:
    """``judge`` as a Judge: a Judge as it is, a spec string through ``make_judge``, None for the
    concept's own, or the toy world's oracle module (what older code passes)."""
    if isinstance(judge, Judge):
        return judge
    if judge is None:
        return make_judge(concept.judge, concept, device)
    if isinstance(judge, str):
        return make_judge(judge, concept, device)
    if hasattr(judge, "predict") and hasattr(judge, "heads"):
        from .toy import ToyJudge

        return ToyJudge(concept, oracle=judge)
    raise JudgeError(f"{type(judge).__name__} is not a judge: pass a Judge, a spec ({', '.join(KINDS)}) or None")


__all__ = ["KINDS", "Judge", "JudgeError", "Verdicts", "judge_of", "make_judge", "texts_of"]
