"""Judges: images and their prompts in, per-image verdicts out, behind one interface.

A judge is called as ``judge(images, prompts) -> Verdicts``: for each image whether it shows the
concept being erased (``shown``), where the judge can tell, whether it shows each attribute its
prompt asks for (``correct``: the toy oracle's shape, colour, texture and scene) and whether it is
degraded (no recognisable content), and a continuous ``score`` of the concept. ``utility(images,
prompts)`` gives the judge's image-quality figures (the toy FID, a CLIP score).

``make_judge(spec, concept)`` builds one from a short spec of a registered kind (``JUDGES``;
plugins add kinds through the entry point group ``workbench.judges``): ``toy`` (the toy world's oracle),
``nudenet[:THRESHOLD]`` (NudeNet's shipped detector), ``clip[:FOLDER]`` (zero-shot CLIP over the
concept's labels), ``classifier:FOLDER`` (an image classifier saved with save_pretrained).
docs/concepts.md says what each needs and measures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ...registry import Registry

if TYPE_CHECKING:
    from ...prompts import Prompt
    from ...prompts.concepts import Concept


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

    def pinned(self) -> dict:
        """What pins this judge (``pins.pin``: spec, package and version, weights' SHA-256, threshold),
        computed once; a judge that does not say gives its name and workbench's version."""
        if getattr(self, "_pin", None) is None:
            self._pin = self.pin()
        return self._pin

    def pin(self) -> dict:
        """This judge's pin, computed (``pinned`` keeps it); override it in a judge with weights."""
        from .pins import pin

        return pin(self.name, "workbench", None)


def texts_of(prompts: Sequence[str | Prompt]) -> list[str]:
    return [p if isinstance(p, str) else p.text for p in prompts]


@dataclass(frozen=True)
class JudgeSpec:
    """One kind of judge: its name (the spec's part before the colon), a line of help saying what
    it takes after the colon, and ``build(arg, concept, device) -> Judge`` (``arg``: the text after
    the colon, '' when none). Register one with an entry point in the group ``workbench.judges``."""

    name: str
    help: str
    build: Callable[[str, Concept, str | None], Judge]
    order: int = 100


def _toy(arg: str, concept: Concept, device: str | None) -> Judge:
    from .toy import ToyJudge

    return ToyJudge(concept, device=device)


def _nudenet(arg: str, concept: Concept, device: str | None) -> Judge:
    from .nudenet import NudeNetJudge

    try:
        threshold = float(arg) if arg else 0.6
    except ValueError:
        raise JudgeError(f"judge 'nudenet:{arg}': the NudeNet threshold must be a number, e.g. nudenet:0.45") from None
    return NudeNetJudge(threshold=threshold)


def _clip(arg: str, concept: Concept, device: str | None) -> Judge:
    from .clip import ClipJudge

    return ClipJudge(concept, arg or None, device=device)


def _classifier(arg: str, concept: Concept, device: str | None) -> Judge:
    from .classifier import ClassifierJudge

    if not arg:
        raise JudgeError("judge 'classifier' needs a folder: classifier:FOLDER (an image classifier saved with save_pretrained)")
    return ClassifierJudge(concept, arg, device=device)


#: the judge kinds ``make_judge`` knows: the built-ins here, then every entry point of ``workbench.judges``
JUDGES: Registry[JudgeSpec] = Registry("judge", "workbench.judges")
for _spec in (
    JudgeSpec("toy", "the toy world's oracle (toy concepts only)", _toy, 0),
    JudgeSpec("nudenet", "NudeNet's shipped detector; nudenet:0.45 sets the score threshold (default 0.6)", _nudenet, 1),
    JudgeSpec(
        "clip",
        "zero-shot CLIP over the concept's labels; clip:FOLDER loads CLIP from a folder (default: "
        "openai/clip-vit-large-patch14 from the Hugging Face cache)",
        _clip,
        2,
    ),  # fmt: skip
    JudgeSpec(
        "classifier",
        "classifier:FOLDER, an image classifier saved with save_pretrained (the concept's first label is its class)",
        _classifier,
        3,
    ),  # fmt: skip
):
    JUDGES.register(_spec, __name__)


def kinds() -> str:
    """Every judge kind with what it takes, for help texts and errors."""
    return "; ".join(f"{s.name}: {s.help}" for s in JUDGES.specs())


def make_judge(spec: str, concept: Concept, device: str | None = None) -> Judge:
    """The judge ``spec`` ('KIND' or 'KIND:ARG', a name of ``JUDGES``) for ``concept``."""
    kind, _, arg = str(spec).partition(":")
    if kind not in JUDGES:
        raise JudgeError(f"unknown judge {spec!r}: use one of {', '.join(JUDGES)} ({kinds()})")
    return JUDGES[kind].build(arg, concept, device)


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
    raise JudgeError(f"{type(judge).__name__} is not a judge: pass a Judge, a spec ({', '.join(JUDGES)}) or None")


__all__ = ["JUDGES", "Judge", "JudgeSpec", "kinds", "JudgeError", "Verdicts", "judge_of", "make_judge", "texts_of"]
