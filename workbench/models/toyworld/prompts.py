"""The toy world's prompt sets: analogues of the paper's calibration sets, and the held-out
evaluation captions. Registered as a provider of named sets (entry point ``toy`` in the group
``workbench.prompt_sets``)."""

from __future__ import annotations

from ...prompts import Prompt, PromptSet, paired
from .grammar import COLOURS, SCENES, SHAPES, TEXTURE_PHRASE, TEXTURES, parse


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
    names = {f"texture:{t}": f"toy world, style analogue: {t}" for t in TEXTURE_PHRASE}
    names.update({f"shape:{s}": f"toy world, object analogue: {s}" for s in SHAPES})
    names["toy:textures"] = "toy world: every texture on every colour x shape (sets plain, striped, dotted, checkered)"
    names["toy:shapes"] = "toy world: every shape on every colour x scene, and the scenes alone (set scene)"
    names["swap:red_to_blue"] = "toy world, gender analogue: red vs blue"
    names["toy:eval"] = "toy world: held-out evaluation captions"
    return names


def get(name: str, seed: int = 0) -> PromptSet | None:
    kind, _, arg = name.partition(":")
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
    return None


# -- concepts: what the erasers, attacks and the robustness pages erase ------------------------------
def named_concepts() -> dict[str, str]:
    out = {t: f"toy world, a texture (style analogue): {t} (judge: the oracle)" for t in TEXTURE_PHRASE}
    out.update({s: f"toy world, a shape (object analogue): {s} (judge: the oracle)" for s in SHAPES})
    return out


def get_concept(name: str, n_per: int = 2):
    """A toy concept: its calibration pairs (``texture:NAME`` against plain, ``shape:NAME`` against the
    scene alone), the held-out captions ``toy:eval`` in their order (``n_per`` each), the target
    captions without the concept's words as bases, and the oracle as judge."""
    from ...prompts.concepts import Concept

    if name in TEXTURE_PHRASE:
        attr, cal = "texture", toy_texture(name)
    elif name in SHAPES:
        attr, cal = "shape", toy_shape(name)
    else:
        return None
    ref = [p for p in cal if p.set != name]
    ev = list(toy_eval(n_per=n_per))
    shows = tuple(parse(p.text)[attr] == name for p in ev)
    words = f" {TEXTURE_PHRASE[name]}" if attr == "texture" else f" {name}"
    bases = tuple(" ".join(p.text.replace(words, "").split()) for p, s in zip(ev, shows) if s)
    return Concept(name, tuple(cal.only(name)), tuple(ref), tuple(ev), shows, bases, "toy", source="toy world",
                   extra={"attribute": attr, "n_per": n_per, "words": words.strip()})  # fmt: skip
