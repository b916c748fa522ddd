"""The paper's calibration sets (ConceptPrune Table 9): styles, nudity, ImageNette objects, gender."""

from __future__ import annotations

from . import PromptSet, paired

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
    return paired(
        [f"a {o} in the style of {artist}" for o in STYLE_OBJECTS],
        [f"a {o}" for o in STYLE_OBJECTS],
        _slug(artist),
        "no_style",
        seed,
    )


def nudity(seed: int = 0) -> PromptSet:
    return paired([f"a photo of a naked {p}" for p in PERSONS], [f"a photo of a {p}" for p in PERSONS], "naked", "clothed", seed)


def imagenette_object(concept: str, seed: int = 0) -> PromptSet:
    if concept in PLACE_OBJECTS:
        return paired([f"a {concept} near a {p}" for p in PLACES], [f"a {p}" for p in PLACES], _slug(concept), "places", seed)
    return paired(
        [f"a {concept} in a {s}" for s in OBJECT_SCENES], [f"a {s}" for s in OBJECT_SCENES], _slug(concept), "scenes", seed
    )


def gender(direction: str = "male_to_female", seed: int = 0) -> PromptSet:
    m = [f"a photo of a {w}" for w in MALE]
    f = [f"a photo of a {w}" for w in FEMALE]
    if direction == "male_to_female":
        return paired(m, f, "male", "female", seed)
    if direction == "female_to_male":
        return paired(f, m, "female", "male", seed)
    raise ValueError(f"unknown gender direction {direction!r}: use male_to_female or female_to_male")


def named_sets() -> dict[str, str]:
    names = {f"artist:{_slug(a)}": f"paper, art style: {a}" for a in ARTISTS}
    names["nudity"] = "paper: naked vs clothed persons"
    names.update({f"object:{_slug(o)}": f"paper, ImageNette object: {o}" for o in IMAGENETTE + PLACE_OBJECTS})
    names["gender:male_to_female"] = "paper: male words vs female words"
    names["gender:female_to_male"] = "paper: female words vs male words"
    return names


def get(name: str, seed: int = 0) -> PromptSet | None:
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
    return None
