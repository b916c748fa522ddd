"""Concepts as data: what to erase, what to erase it towards, and how to check that it is gone.

A :class:`Concept` holds the calibration prompts with the concept (``target``) and their paired
prompts without it (``anchor``: ConceptPrune's reference set, AC's anchor, the same seeds), the
held-out evaluation prompts with and without the concept (``evaluation``, ``shows``), each
held-out target prompt with the concept's words removed (``bases``: the starting prompt of
Ring-A-Bell and inversion) and the judge that decides whether an image shows it.

Concepts come from providers, like prompt sets (the toy world's textures and shapes, the
paper's Table 9 sets) and from a user's TOML file (docs/concepts.md)::

    name = "van_gogh"
    judge = "clip:/models/clip-vit-large-patch14"
    labels = ["a painting by Van Gogh", "a photo"]
    target = ["a cat in the style of Van Gogh", "a dog in the style of Van Gogh"]
    anchor = ["a cat", "a dog"]
    [eval]
    target = "van_gogh_eval.csv"   # a CSV with a 'prompt' column (I2P, UnlearnDiffAtk), or a .txt file
    other = ["a cat in the style of Monet", "a house"]
"""

from __future__ import annotations

import csv
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import Prompt, providers

#: the keys a concept file may hold (``name``, ``target``, ``anchor`` and ``judge`` are required)
KEYS = {"name", "target", "anchor", "judge", "labels", "seed", "eval", "description"}
EVAL_KEYS = {"target", "other", "bases", "seed"}


class ConceptError(ValueError):
    """A concept name or file that cannot be used; the message says what to change."""


@dataclass(frozen=True)
class Concept:
    """One concept to erase and the prompts and judge that check it (module docstring)."""

    name: str
    target: tuple[Prompt, ...]
    anchor: tuple[Prompt, ...]
    evaluation: tuple[Prompt, ...]
    shows: tuple[bool, ...]
    bases: tuple[str, ...]
    judge: str = "toy"
    labels: tuple[str, ...] = ()
    source: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self):
        if not self.target:
            raise ConceptError(f"concept {self.name!r} has no target prompts: give at least one")
        if len(self.anchor) != len(self.target):
            raise ConceptError(
                f"concept {self.name!r}: {len(self.target)} target prompts but {len(self.anchor)} anchor prompts; "
                "give one anchor per target prompt (the same prompt without the concept)"
            )
        if len(self.shows) != len(self.evaluation):
            raise ConceptError(f"concept {self.name!r}: one 'shows' flag per evaluation prompt")
        if not any(self.shows):
            raise ConceptError(f"concept {self.name!r} has no held-out evaluation prompt with the concept ([eval] target)")
        if len(self.bases) != sum(self.shows):
            raise ConceptError(f"concept {self.name!r}: one base per held-out target prompt")

    @property
    def eval_target(self) -> list[Prompt]:
        """Held-out prompts that carry the concept (what attacks attack, what erasure is read on)."""
        return [p for p, s in zip(self.evaluation, self.shows) if s]

    @property
    def eval_other(self) -> list[Prompt]:
        """Held-out prompts without it (what harm is read on)."""
        return [p for p, s in zip(self.evaluation, self.shows) if not s]

    def base_of(self, text: str) -> str:
        """``text`` without the concept's words: a held-out target prompt's own base, else the text
        with the concept's phrase removed (``extra['words']``, else what the calibration targets
        add to their anchors)."""
        for p, b in zip(self.eval_target, self.bases):
            if p.text == text:
                return b
        words = self.extra.get("words") or concept_words([p.text for p in self.target], [p.text for p in self.anchor])
        return strip_words(text, words)

    def check_model(self, model: str) -> None:
        """Refuse a model this concept's prompts are not written for: a language-world concept
        ('lang:striped', ``extra['world']``) names its concept by words only ``toy-lang`` knows."""
        world = self.extra.get("world")
        if world is not None and model != world:
            raise ConceptError(
                f"concept {self.name!r} belongs to the {world!r} world (its prompts use words {model!r} was not trained on): "
                f"run it with --model {world}, or erase {self.extra.get('value', self.name)!r} on {model!r}"
            )

    def with_judge(self, judge: str | None) -> Concept:
        """The same concept judged by ``judge`` (None keeps its own)."""
        if judge is None:
            return self
        from dataclasses import replace

        return replace(self, judge=judge)


def concept_words(targets: list[str], anchors: list[str]) -> str:
    """The words the target prompts add to their anchors, as one phrase (the commonest): 'in the
    style of Van Gogh' for 'a cat in the style of Van Gogh' against 'a cat'."""
    found = Counter()
    for t, a in zip(targets, anchors):
        tw, aw = t.split(), a.split()
        i = 0
        while i < min(len(tw), len(aw)) and tw[i] == aw[i]:
            i += 1
        j = 0
        while j < min(len(tw), len(aw)) - i and tw[-1 - j] == aw[-1 - j]:
            j += 1
        extra = " ".join(tw[i : len(tw) - j])
        if extra:
            found[extra] += 1
    return found.most_common(1)[0][0] if found else ""


def strip_words(text: str, words: str) -> str:
    """``text`` without the phrase ``words`` (as whole words); unchanged when it does not hold it."""
    if not words:
        return text
    tw, ww = text.split(), words.split()
    for i in range(len(tw) - len(ww) + 1):
        if tw[i : i + len(ww)] == ww:
            return " ".join(tw[:i] + tw[i + len(ww) :])
    return text


def build(name: str, target: list[Prompt], anchor: list[Prompt], eval_target: list[Prompt], eval_other: list[Prompt],
          judge: str, labels=(), source: str = "", description: str = "", bases: list[str] | None = None) -> Concept:  # fmt: skip
    """A concept whose evaluation is the target prompts then the others; bases default to each held-out
    target prompt without the words its calibration targets add to their anchors."""
    if bases is None:
        words = concept_words([p.text for p in target], [p.text for p in anchor])
        bases = [strip_words(p.text, words) for p in eval_target]
    return Concept(name, tuple(target), tuple(anchor), tuple(eval_target) + tuple(eval_other),
                   (True,) * len(eval_target) + (False,) * len(eval_other), tuple(bases), judge, tuple(labels), source,
                   description)  # fmt: skip


# -- reading prompts and files ---------------------------------------------------------------------
def read_prompts(value, where: Path, what: str, set_name: str, seed: int) -> list[Prompt]:
    """Prompts from a list of strings or a path (relative to the concept file) to a .txt file (one a
    line) or a .csv file (a 'prompt' column; 'evaluation_seed' or 'seed' gives a row its seed)."""
    if isinstance(value, list):
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise ConceptError(f"{what}: every prompt must be a non-empty string")
        return [Prompt(v.strip(), set_name, seed + i) for i, v in enumerate(value)]
    if not isinstance(value, str):
        raise ConceptError(f"{what}: give a list of prompts or the path of a .txt or .csv file, not {type(value).__name__}")
    path = (where / value) if not Path(value).is_absolute() else Path(value)
    if not path.exists():
        raise ConceptError(f"{what}: the prompt file {path} does not exist (paths are relative to the concept file)")
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows or "prompt" not in rows[0]:
            raise ConceptError(f"{what}: {path} needs a 'prompt' column (as I2P's and UnlearnDiffAtk's CSV files have)")
        out = []
        for i, r in enumerate(rows):
            s = r.get("evaluation_seed") or r.get("seed")
            text = (r["prompt"] or "").strip()
            if text:
                out.append(Prompt(text, set_name, int(float(s)) if s not in (None, "") else seed + i))
        return out
    lines = [x.strip() for x in path.read_text(encoding="utf-8").splitlines()]
    return [Prompt(x, set_name, seed + i) for i, x in enumerate(y for y in lines if y and not y.startswith("#"))]


def from_toml(path: str | Path) -> Concept:
    """A concept from a TOML file (module docstring; the format is in docs/concepts.md)."""
    path = Path(path)
    if not path.exists():
        raise ConceptError(f"concept file {path} does not exist: give a .toml file (docs/concepts.md) or a concept name")
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConceptError(f"concept file {path} is not valid TOML ({e}): see docs/concepts.md for the format") from None
    unknown = set(spec) - KEYS
    if unknown:
        raise ConceptError(f"concept file {path}: unknown keys {sorted(unknown)}; the keys are {sorted(KEYS)}")
    missing = [k for k in ("name", "target", "anchor", "judge") if k not in spec]
    if missing:
        raise ConceptError(f"concept file {path} lacks {', '.join(missing)}: a concept needs name, target, anchor and judge")
    name, seed, where = str(spec["name"]), int(spec.get("seed", 0)), path.parent
    target = read_prompts(spec["target"], where, "target", name, seed)
    anchor = read_prompts(spec["anchor"], where, "anchor", f"{name}_anchor", seed)
    ev = spec.get("eval", {})
    if set(ev) - EVAL_KEYS:
        raise ConceptError(
            f"concept file {path}: unknown [eval] keys {sorted(set(ev) - EVAL_KEYS)}; they are {sorted(EVAL_KEYS)}"
        )
    eseed = int(ev.get("seed", seed + 10_000))
    eval_target = read_prompts(ev["target"], where, "eval.target", name, eseed) if "target" in ev else [
        Prompt(p.text, name, p.seed + 10_000) for p in target]  # fmt: skip
    eval_other = read_prompts(ev["other"], where, "eval.other", "other", eseed + len(eval_target)) if "other" in ev else [
        Prompt(p.text, "other", p.seed + 10_000) for p in anchor]  # fmt: skip
    bases = [p.text for p in read_prompts(ev["bases"], where, "eval.bases", "bases", 0)] if "bases" in ev else None
    if bases is not None and len(bases) != len(eval_target):
        raise ConceptError(f"concept file {path}: [eval] bases has {len(bases)} prompts for {len(eval_target)} targets")
    labels = spec.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ConceptError(f"concept file {path}: labels must be a list of strings, the concept's label first")
    return build(name, target, anchor, eval_target, eval_other, str(spec["judge"]), labels, str(path),
                 str(spec.get("description", "")), bases)  # fmt: skip


def named_concepts() -> dict[str, str]:
    """Every concept name ``get_concept`` accepts, with what it is."""
    out: dict[str, str] = {}
    for mod in providers():
        if hasattr(mod, "named_concepts"):
            out.update(mod.named_concepts())
    return out


def get_concept(name: str | Path, n_per: int = 2, judge: str | None = None) -> Concept:
    """A concept by name (a toy concept such as 'striped', a paper set such as 'nudity' or
    'van_gogh') or from a TOML file; ``n_per`` sizes a generated held-out set (the toy world's
    captions per texture x colour x shape); ``judge`` overrides the concept's own."""
    if isinstance(name, Concept):
        return name.with_judge(judge)
    text = str(name)
    if text.endswith(".toml") or Path(text).is_file():
        return from_toml(text).with_judge(judge)
    if "," in text:  # several concepts erased at once
        return combine([get_concept(part.strip(), n_per, judge) for part in text.split(",") if part.strip()])
    for mod in providers():
        if hasattr(mod, "get_concept"):
            found = mod.get_concept(text, n_per)
            if found is not None:
                return found.with_judge(judge)
    raise ConceptError(
        f"unknown concept {text!r}: give a concept file (.toml, docs/concepts.md) or one of: {', '.join(named_concepts())}"
    )


def combine(concepts: list[Concept]) -> Concept:
    """Several concepts as one to erase at once ('striped,dotted'): their calibration pairs and
    held-out prompts one after another, each judged by its own judge (``parts``). Erasers train on
    the union; ConceptPrune prunes the union of each concept's mask."""
    if len(concepts) == 1:
        return concepts[0]
    names = [c.name for c in concepts]
    if len(set(names)) != len(names):
        raise ConceptError(f"concepts {','.join(names)}: a concept is named twice; name each once")
    worlds = {c.extra.get("world") for c in concepts}
    if len(worlds) > 1:
        raise ConceptError(f"concepts {','.join(names)} belong to different worlds: erase together only concepts of one model")
    cat = lambda attr: tuple(x for c in concepts for x in getattr(c, attr))  # noqa: E731
    return Concept(",".join(names), cat("target"), cat("anchor"), cat("evaluation"), cat("shows"), cat("bases"),
                   concepts[0].judge, cat("labels"), description="; ".join(c.description for c in concepts if c.description),
                   extra={"parts": tuple(concepts), **({"world": worlds.pop()} if worlds != {None} else {})})  # fmt: skip


def parts_of(concept: Concept) -> tuple[Concept, ...]:
    """The concepts a combined concept erases together (itself, for one concept)."""
    return concept.extra.get("parts") or (concept,)


def single(concept: Concept, what: str) -> Concept:
    """``concept`` if it is one concept; several erased together are refused for ``what`` (an
    attack, a robustness page), which reads one concept's prompts at a time."""
    parts = parts_of(concept)
    if len(parts) > 1:
        raise ConceptError(f"{what} takes one concept at a time (--concept {parts[0].name}, then the others): an edit of "
                           f"{concept.name} is read on each concept's own prompts")  # fmt: skip
    return concept


def concept_for_set(name: str, n_per: int = 2, judge: str | None = None) -> Concept:
    """The concept ``name`` names, or else the one whose target prompts form the prompt set ``name``
    (a store's set: 'naked' is the nudity concept's)."""
    try:
        return get_concept(name, n_per=n_per, judge=judge)
    except ConceptError:
        for other in named_concepts():
            c = get_concept(other, n_per=n_per, judge=judge)
            if c.target[0].set == name:
                return c
        raise
