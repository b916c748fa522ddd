"""Prompt sets: the paper's calibration templates (Table 9), the toy world's, and text files.

A PromptSet is a list of prompts, each with the name of the set it belongs to and the seed of its
initial noise. Target and reference prompts made from the same filler share a seed, so P* and P
start from the same noise, as the paper fixes the seed before every prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .toyworld.grammar import COLOURS, SCENES, SHAPES, TEXTURE_PHRASE, TEXTURES


@dataclass(frozen=True)
class Prompt:
    text: str
    set: str
    seed: int


@dataclass
class PromptSet:
    """An ordered list of prompts; ``+`` concatenates sets."""

    prompts: list[Prompt] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prompts)

    def __iter__(self):
        return iter(self.prompts)

    def __add__(self, other: PromptSet) -> PromptSet:
        return PromptSet(self.prompts + other.prompts)

    @property
    def sets(self) -> list[str]:
        return list(dict.fromkeys(p.set for p in self.prompts))

    def only(self, name: str) -> PromptSet:
        return PromptSet([p for p in self.prompts if p.set == name])


def paired(target: list[str], reference: list[str], target_set: str, reference_set: str, seed: int = 0) -> PromptSet:
    """Target and reference prompts, the i-th of each sharing the seed ``seed + i``."""
    if len(target) != len(reference):
        raise ValueError(f"paired sets need equal lengths, got {len(target)} targets and {len(reference)} references")
    t = [Prompt(x, target_set, seed + i) for i, x in enumerate(target)]
    r = [Prompt(x, reference_set, seed + i) for i, x in enumerate(reference)]
    return PromptSet(t + r)


# ---- the paper's Table 9 -------------------------------------------------------------------
ARTISTS = ("Van Gogh", "Monet", "Leonardo Da Vinci", "Salvador Dali", "Pablo Picasso")
STYLE_OBJECTS = ("cat", "dog", "mouse", "bear", "car", "chair", "bag", "ball", "door", "rabbit", "flower", "bowl", "bat", "horse", "bird", "wall", "bottle", "building", "chicken", "duck")  # fmt: skip
IMAGENETTE = ("parachute", "gas pump", "golf ball", "cassette player", "english springer", "tench", "chain saw", "french horn")
OBJECT_SCENES = ("road", "garden", "beach", "room", "park", "table", "bag", "tree", "forest", "street", "shelter", "chair")
PLACE_OBJECTS = ("church", "garbage truck")
PLACES = ("road", "park", "beach", "street", "house", "tree", "forest", "statue", "car")
MALE = ("man", "boy", "person", "guy", "father", "son", "husband", "uncle")
FEMALE = ("woman", "girl", "female", "lady", "mother", "daughter", "wife", "aunt")
#: Table 9's person list for nudity did not survive in our copy of the paper; these stand in.
PERSONS = ("man", "woman", "person", "boy", "girl", "guy", "lady", "model")


def _slug(name: str) -> str:
    return name.lower().replace(" ", "_")


def artist_style(artist: str, seed: int = 0) -> PromptSet:
    return paired([f"a {o} in the style of {artist}" for o in STYLE_OBJECTS], [f"a {o}" for o in STYLE_OBJECTS], _slug(artist), "no_style", seed)


def nudity(seed: int = 0) -> PromptSet:
    return paired([f"a photo of a naked {p}" for p in PERSONS], [f"a photo of a {p}" for p in PERSONS], "naked", "clothed", seed)


def imagenette_object(concept: str, seed: int = 0) -> PromptSet:
    if concept in PLACE_OBJECTS:
        return paired([f"a {concept} near a {p}" for p in PLACES], [f"a {p}" for p in PLACES], _slug(concept), "places", seed)
    return paired([f"a {concept} in a {s}" for s in OBJECT_SCENES], [f"a {s}" for s in OBJECT_SCENES], _slug(concept), "scenes", seed)


def gender(direction: str = "male_to_female", seed: int = 0) -> PromptSet:
    m = [f"a photo of a {w}" for w in MALE]
    f = [f"a photo of a {w}" for w in FEMALE]
    if direction == "male_to_female":
        return paired(m, f, "male", "female", seed)
    if direction == "female_to_male":
        return paired(f, m, "female", "male", seed)
    raise ValueError(f"unknown gender direction {direction!r}: use male_to_female or female_to_male")


# ---- the toy world's --------------------------------------------------------------------------
def toy_texture(texture: str, seed: int = 0) -> PromptSet:
    """Style analogue: "a <colour> <shape> with <texture>" vs "a <colour> <shape>"."""
    if texture not in TEXTURE_PHRASE:
        raise ValueError(f"unknown texture {texture!r}: choose one of {sorted(TEXTURE_PHRASE)}")
    base = [f"a {c} {s}" for c in COLOURS for s in SHAPES]
    return paired([f"{b} {TEXTURE_PHRASE[texture]}" for b in base], base, texture, "plain", seed)


def toy_shape(shape: str, seed: int = 0) -> PromptSet:
    """Object analogue: "a <colour> <shape> on <scene>" vs "<scene>"."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}: choose one of {list(SHAPES)}")
    pairs = [(f"a {c} {shape} on {sc}", sc) for c in COLOURS for sc in SCENES]
    return paired([p for p, _ in pairs], [r for _, r in pairs], shape, "scene", seed)


def toy_textures(seed: int = 0) -> PromptSet:
    """Every texture on every colour x shape, the four phrasings of one base sharing a seed; set
    name = the texture. One store then serves any texture against any reference (plain, the other
    textures, or both)."""
    base = [f"a {c} {s}" for c in COLOURS for s in SHAPES]
    out = []
    for t in TEXTURES:
        phrase = f" {TEXTURE_PHRASE[t]}" if t != "plain" else ""
        out += [Prompt(f"{b}{phrase}", t, seed + i) for i, b in enumerate(base)]
    return PromptSet(out)


def toy_shapes(seed: int = 0) -> PromptSet:
    """Every shape on every colour x scene, and the scene alone (set 'scene'), sharing seeds per
    (colour, scene); set name = the shape."""
    base = [(c, sc) for c in COLOURS for sc in SCENES]
    out = [Prompt(f"a {c} {s} on {sc}", s, seed + i) for s in SHAPES for i, (c, sc) in enumerate(base)]
    out += [Prompt(sc, "scene", seed + i) for i, (c, sc) in enumerate(base)]
    return PromptSet(out)


def toy_swap(source: str = "red", target: str = "blue", seed: int = 0) -> PromptSet:
    """Gender-reversal analogue: "a <source> <shape> ..." vs "a <target> <shape> ..."."""
    for c in (source, target):
        if c not in COLOURS:
            raise ValueError(f"unknown colour {c!r}: choose from {list(COLOURS)}")
    rest = [f"{s} on {sc}" for s in SHAPES for sc in SCENES]
    return paired([f"a {source} {r}" for r in rest], [f"a {target} {r}" for r in rest], source, target, seed)


def toy_eval(n_per: int = 2, seed: int = 10_000) -> PromptSet:
    """Held-out evaluation prompts: full captions (every attribute named, on every scene), a
    phrasing calibration never uses; set name = the texture."""
    out = []
    i = 0
    for t in TEXTURES:
        for c in COLOURS:
            for s in SHAPES:
                for _ in range(n_per):
                    sc = SCENES[i % len(SCENES)]
                    phrase = f" {TEXTURE_PHRASE[t]}" if t != "plain" else ""
                    out.append(Prompt(f"a {c} {s}{phrase} on {sc}", t, seed + i))
                    i += 1
    return PromptSet(out)


def named_sets() -> dict[str, str]:
    """Every name ``get`` accepts, with what it makes."""
    names = {f"artist:{_slug(a)}": f"paper, art style: {a}" for a in ARTISTS}
    names["nudity"] = "paper: naked vs clothed persons"
    names.update({f"object:{_slug(o)}": f"paper, ImageNette object: {o}" for o in IMAGENETTE + PLACE_OBJECTS})
    names["gender:male_to_female"] = "paper: male words vs female words"
    names["gender:female_to_male"] = "paper: female words vs male words"
    names.update({f"texture:{t}": f"toy world, style analogue: {t}" for t in TEXTURE_PHRASE})
    names.update({f"shape:{s}": f"toy world, object analogue: {s}" for s in SHAPES})
    names["toy:textures"] = "toy world: every texture on every colour x shape (sets plain, striped, dotted, checkered)"
    names["toy:shapes"] = "toy world: every shape on every colour x scene, and the scenes alone (set scene)"
    names["swap:red_to_blue"] = "toy world, gender analogue: red vs blue"
    names["toy:eval"] = "toy world: held-out evaluation captions"
    return names


def get(name: str, seed: int = 0) -> PromptSet:
    """A named calibration set (see ``named_sets()``) or a text file of prompts, one a line
    (``set<TAB>prompt`` lines name their set; others take the file's stem)."""
    path = Path(name)
    if path.suffix == ".txt" or path.exists():
        return from_file(path, seed)
    kind, _, arg = name.partition(":")
    arts = {_slug(a): a for a in ARTISTS}
    objs = {_slug(o): o for o in IMAGENETTE + PLACE_OBJECTS}
    if kind == "artist" and arg in arts:
        return artist_style(arts[arg], seed)
    if kind == "nudity" and not arg:
        return nudity(seed)
    if kind == "object" and arg in objs:
        return imagenette_object(objs[arg], seed)
    if kind == "gender" and arg:
        return gender(arg, seed)
    if kind == "texture":
        return toy_texture(arg, seed)
    if kind == "shape":
        return toy_shape(arg, seed)
    if kind == "swap" and "_to_" in arg:
        a, b = arg.split("_to_")
        return toy_swap(a, b, seed)
    if name == "toy:textures":
        return toy_textures(seed)
    if name == "toy:shapes":
        return toy_shapes(seed)
    if name == "toy:eval":
        return toy_eval(seed=seed + 10_000)
    raise ValueError(f"unknown prompt set {name!r}: use a file of prompts or one of: {', '.join(named_sets())}")


def from_file(path: str | Path, seed: int = 0) -> PromptSet:
    """Prompts from a text file, one a line; blank lines and lines starting with # are skipped."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"prompt file {path} does not exist: give a path to a text file with one prompt a line")
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        set_name, tab, text = line.partition("\t")
        if not tab:
            set_name, text = path.stem, line
        out.append(Prompt(text, set_name, seed + len(out)))
    if not out:
        raise ValueError(f"prompt file {path} holds no prompts: write one prompt a line")
    return PromptSet(out)
