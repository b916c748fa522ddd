"""The toy world's concept grammar: shapes (objects), textures (styles), colours and scenes.

A caption names what it shows; an attribute it leaves out is drawn at random, except the
texture, which is ``plain`` when unnamed (like a Stable Diffusion prompt without a style).
"""

from __future__ import annotations

from dataclasses import dataclass

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = ("red", "green", "blue", "yellow")
TEXTURES = ("plain", "striped", "dotted", "checkered")
SCENES = ("night", "snow", "fog")
#: the phrase a caption uses for each non-plain texture
TEXTURE_PHRASE = {"striped": "with stripes", "dotted": "with dots", "checkered": "with checks"}
ATTRIBUTES = {"shape": SHAPES, "colour": COLOURS, "texture": TEXTURES, "scene": SCENES}
NO_OBJECT = "none"


@dataclass(frozen=True)
class Spec:
    """One image's ground truth. ``shape == 'none'`` draws the scene alone."""

    shape: str
    colour: str
    texture: str
    scene: str

    def caption(self, colour: bool = True, texture: bool = True, scene: bool = True) -> str:
        """The caption of this image; the flags leave attributes unnamed."""
        if self.shape == NO_OBJECT:
            return self.scene
        words = ["a"]
        if colour:
            words.append(self.colour)
        words.append(self.shape)
        if texture and self.texture != "plain":
            words.append(TEXTURE_PHRASE[self.texture])
        if scene:
            words += ["on", self.scene]
        return " ".join(words)


def parse(caption: str) -> dict[str, str | None]:
    """Attributes a caption fixes (None where it leaves them free); texture defaults to plain."""
    words = caption.lower().split()
    out: dict[str, str | None] = {"shape": None, "colour": None, "texture": "plain", "scene": None}
    for w in words:
        if w in SHAPES:
            out["shape"] = w
        elif w in COLOURS:
            out["colour"] = w
        elif w in SCENES:
            out["scene"] = w
    for tex, phrase in TEXTURE_PHRASE.items():
        if phrase in caption:
            out["texture"] = tex
    if out["shape"] is None and words:
        out["shape"] = NO_OBJECT
        out["texture"] = None
    return out


def vocabulary() -> list[str]:
    """Every word a caption can use (the tokenizer's whole-word vocabulary)."""
    words = {"a", "on", "with", "stripes", "dots", "checks"}
    for group in (SHAPES, COLOURS, SCENES):
        words.update(group)
    return sorted(words)
