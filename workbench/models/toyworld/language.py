"""The language-rich toy world's captions: several routes to each texture and shape (issue 24).

The images and the oracle are the toy world's own; only the captions change. Each texture and
shape can be named by more than one *route*: the original phrase, synonyms ('stripy', 'banded'),
an object or pattern that implies it ('zebra-patterned', 'like a chessboard') and a description
that never names it ('with thin parallel bars'). Routes are split: ``train`` routes are what an
eraser may see (its calibration and anchor prompts come from them), ``heldout`` routes are for
attacks and evaluation only. A texture route sits before the shape (``pre``: 'a red stripy circle')
or after it (``post``: 'a red circle with thin parallel bars'); a shape route replaces the shape's
word. Some routes are several tokens (hyphenated and multi-word phrases, and words the tokenizer
splits into pieces), as Stable Diffusion's are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .grammar import COLOURS, NO_OBJECT, SCENES, SHAPES, Spec

#: token positions of the language world's text encoder (the original world's: 16); its longest
#: caption, a shape and a texture both described, is 23 tokens with BOS and EOS
MAX_LENGTH = 24


@dataclass(frozen=True)
class Route:
    """One way to name a texture or a shape in a caption."""

    value: str  # the texture or shape it draws
    phrase: str  # the words
    kind: str  # 'original', 'synonym', 'implied' or 'description'
    split: str  # 'train' or 'heldout'
    place: str = "post"  # textures: 'pre' (before the shape) or 'post' (after it); shapes: 'shape'


def _r(value: str, kind: str, split: str, place: str, *phrases: str) -> list[Route]:
    return [Route(value, p, kind, split, place) for p in phrases]


#: every route of every texture and shape; the original phrase of each is the first, a train route
ROUTES: tuple[Route, ...] = tuple(
    _r("striped", "original", "train", "post", "with stripes")
    + _r("striped", "synonym", "train", "pre", "striped")
    + _r("striped", "synonym", "train", "post", "with bands")
    + _r("striped", "synonym", "heldout", "pre", "stripy", "banded")
    + _r("striped", "implied", "heldout", "pre", "zebra-patterned")
    + _r("striped", "description", "heldout", "post", "with thin parallel bars")
    + _r("dotted", "original", "train", "post", "with dots")
    + _r("dotted", "synonym", "train", "pre", "dotted")
    + _r("dotted", "synonym", "train", "post", "with spots")
    + _r("dotted", "synonym", "heldout", "pre", "spotty", "speckled")
    + _r("dotted", "implied", "heldout", "pre", "polka-dot")
    + _r("dotted", "description", "heldout", "post", "with many small round marks")
    + _r("checkered", "original", "train", "post", "with checks")
    + _r("checkered", "synonym", "train", "pre", "checkered")
    + _r("checkered", "synonym", "train", "post", "with a grid")
    + _r("checkered", "synonym", "heldout", "pre", "chequered", "tiled")
    + _r("checkered", "implied", "heldout", "post", "like a chessboard")
    + _r("checkered", "description", "heldout", "post", "with alternating light and dark squares")
    + _r("circle", "original", "train", "shape", "circle")
    + _r("circle", "synonym", "train", "shape", "disc")
    + _r("circle", "synonym", "heldout", "shape", "disk", "round blob")
    + _r("circle", "implied", "heldout", "shape", "full moon")
    + _r("circle", "description", "heldout", "shape", "shape with no corners")
    + _r("square", "original", "train", "shape", "square")
    + _r("square", "synonym", "train", "shape", "box")
    + _r("square", "synonym", "heldout", "shape", "block")
    + _r("square", "implied", "heldout", "shape", "dice")
    + _r("square", "description", "heldout", "shape", "shape with four equal sides")
    + _r("triangle", "original", "train", "shape", "triangle")
    + _r("triangle", "synonym", "train", "shape", "wedge")
    + _r("triangle", "synonym", "heldout", "shape", "trigon")
    + _r("triangle", "implied", "heldout", "shape", "pyramid")
    + _r("triangle", "description", "heldout", "shape", "shape with three corners")
    + _r("cross", "original", "train", "shape", "cross")
    + _r("cross", "synonym", "train", "shape", "plus")
    + _r("cross", "synonym", "heldout", "shape", "plus sign")
    + _r("cross", "implied", "heldout", "shape", "hospital-sign")
    + _r("cross", "description", "heldout", "shape", "shape of two crossing bars")
)


def routes(value: str, split: str | None = None) -> list[Route]:
    """The routes to a texture or shape (``split``: 'train', 'heldout' or None for both)."""
    out = [r for r in ROUTES if r.value == value and (split is None or r.split == split)]
    if not out:
        known = sorted({r.value for r in ROUTES})
        raise ValueError(f"no routes for {value!r}: the language world has routes for {known}")
    return out


def caption(spec: Spec, texture: Route | None = None, shape: Route | None = None, colour: bool = True,
            scene: bool = True) -> str:  # fmt: skip
    """The caption of ``spec`` naming its texture and shape by the given routes (None: the original
    phrase); a plain texture is never named, as in the original world."""
    if spec.shape == NO_OBJECT:
        return spec.scene
    s = shape or routes(spec.shape)[0]
    if s.value != spec.shape:
        raise ValueError(f"route {s.phrase!r} draws a {s.value}, not a {spec.shape}")
    t = None
    if spec.texture != "plain":
        t = texture or routes(spec.texture)[0]
        if t.value != spec.texture:
            raise ValueError(f"route {t.phrase!r} draws {t.value}, not {spec.texture}")
    words = ["a"] + ([spec.colour] if colour else [])
    if t is not None and t.place == "pre":
        words.append(t.phrase)
    words.append(s.phrase)
    if t is not None and t.place == "post":
        words.append(t.phrase)
    if scene:
        words += ["on", spec.scene]
    return " ".join(words)


#: words the tokenizer keeps in pieces (several tokens each), as CLIP's BPE does with rarer words
PIECES = {"chequered": ("che", "quered"), "zebra": ("ze", "bra"), "speckled": ("spec", "kled"), "trigon": ("tri", "gon"),
          "hospital": ("hos", "pital")}  # fmt: skip


def parse(caption: str) -> dict[str, str | None]:
    """The attributes a language-world caption fixes (``grammar.parse``'s keys): its route phrases
    read back to their texture and shape, the longest phrase first. On the original world's captions
    it reads what ``grammar.parse`` reads (a test checks every caption the prompt sets make), so the
    oracle's judge uses it for both worlds."""
    text = f" {caption.lower().strip()} "
    out: dict[str, str | None] = {"shape": None, "colour": None, "texture": "plain", "scene": None}
    for r in sorted(ROUTES, key=lambda r: -len(r.phrase)):
        if f" {r.phrase} " in text:
            out["shape" if r.place == "shape" else "texture"] = r.value
            text = text.replace(f" {r.phrase} ", " | ")
    for w in text.split():
        if w in COLOURS:
            out["colour"] = w
        elif w in SCENES:
            out["scene"] = w
    if out["shape"] is None and caption.strip():
        out["shape"], out["texture"] = NO_OBJECT, None
    return out


def vocabulary() -> list[str]:
    """Every word the language world's captions use, split as the tokenizer splits them
    (hyphens are words of their own)."""
    words = {"a", "on", "-"} | set(COLOURS) | set(SCENES) | set(SHAPES)
    for r in ROUTES:
        words.update(r.phrase.replace("-", " - ").split())
    return sorted(words)


def tokenizer_files(folder: str | Path) -> Path:
    """The language world's tokenizer: the original vocabulary with the same ids, then every route's
    words (``PIECES`` split into several tokens), at ``MAX_LENGTH`` positions."""
    from .tokenizer import build_files

    return build_files(folder, MAX_LENGTH, extra=vocabulary(), pieces=PIECES)


def routes_markdown() -> str:
    """The routes as a markdown table (docs/toyworld.md holds it verbatim; a test checks)."""
    lines = ["| concept | route | kind | split | place |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r.value} | {r.phrase} | {r.kind} | {r.split} | {r.place} |" for r in ROUTES]
    return "\n".join(lines)
