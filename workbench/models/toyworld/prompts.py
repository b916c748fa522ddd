"""The toy world's prompt sets: analogues of the paper's calibration sets, and the held-out
evaluation captions. Registered as a provider of named sets (entry point ``toy`` in the group
``workbench.prompt_sets``)."""

from __future__ import annotations

from ...prompts import Prompt, PromptSet, paired
from .grammar import COLOURS, SCENES, SHAPES, TEXTURE_PHRASE, TEXTURES, Spec
from .language import parse


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
    out.update({f"lang:{v}": f"language toy world (--model toy-lang): {v}, erased through its train routes, judged on "
                "held-out ones (judge: the oracle)" for v in (*TEXTURE_PHRASE, *SHAPES)})  # fmt: skip
    return out


def get_concept(name: str, n_per: int = 2):
    """A toy concept: its calibration pairs (``texture:NAME`` against plain, ``shape:NAME`` against the
    scene alone), the held-out captions ``toy:eval`` in their order (``n_per`` each), the target
    captions without the concept's words as bases, and the oracle as judge."""
    from ...prompts.concepts import Concept

    if name.startswith("lang:") and name[5:] in (*TEXTURE_PHRASE, *SHAPES):
        return lang_concept(name[5:], n_per)
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


# -- the language world's concepts (issue 24): erasers see train routes, evaluation held-out ones -----
def lang_calibration(value: str, seed: int = 0) -> PromptSet:
    """The calibration pairs of ``toy_texture`` / ``toy_shape`` with the concept named by its train
    routes in turn ('a red circle with stripes', 'a red striped circle', 'a red circle with bands')."""
    from .language import caption, routes

    train = routes(value, "train")
    if value in TEXTURE_PHRASE:
        specs = [Spec(s, c, value, SCENES[0]) for c in COLOURS for s in SHAPES]  # the scene is not named
        texts = [caption(sp, texture=train[i % len(train)], scene=False) for i, sp in enumerate(specs)]
        return paired(texts, [f"a {sp.colour} {sp.shape}" for sp in specs], value, "plain", seed)
    specs = [Spec(value, c, "plain", sc) for c in COLOURS for sc in SCENES]
    texts = [caption(sp, shape=train[i % len(train)]) for i, sp in enumerate(specs)]
    return paired(texts, [sp.scene for sp in specs], value, "scene", seed)


def lang_concept(value: str, n_per: int = 2):
    """``lang:VALUE``: the toy concept on the language world. Calibration and anchor prompts name it
    by its train routes only (``lang_calibration``); the held-out captions are ``toy:eval``'s, in its
    order and seeds, with every caption of the concept naming it by a held-out route in turn (the
    other captions as they were), so the concept rate reads erasure through words no eraser saw.
    ``extra['routes']`` holds, per held-out target caption, the caption under every held-out route
    (the route attack's prompts); ``extra['heldout_words']`` the held-out routes' words that no train
    route uses (the restricted attacks' vocabulary)."""
    from ...prompts.concepts import Concept
    from .language import caption, routes

    attr = "texture" if value in TEXTURE_PHRASE else "shape"
    cal = lang_calibration(value)
    held = routes(value, "heldout")
    ev, shows, bases, variants = [], [], [], []
    j = 0
    for p in toy_eval(n_per=n_per):
        t = parse(p.text)
        if t[attr] != value:
            ev.append(p)
            shows.append(False)
            continue
        spec = Spec(t["shape"], t["colour"], t["texture"], t["scene"])

        def named(r, spec=spec):
            return caption(spec, texture=r if attr == "texture" else None, shape=r if attr == "shape" else None)

        r = held[j % len(held)]
        j += 1
        text = named(r)
        ev.append(Prompt(text, f"lang:{value}", p.seed))
        shows.append(True)
        bases.append(" ".join(f" {text} ".replace(f" {r.phrase} ", " ").split()))
        variants.append([named(x) for x in held])
    train_words = {w for r in routes(value, "train") for w in r.phrase.replace("-", " - ").split()}
    words = sorted({w for r in held for w in r.phrase.replace("-", " - ").split()} - train_words)
    name = f"lang:{value}"
    target = tuple(Prompt(q.text, name, q.seed) for q in cal.only(value))
    return Concept(name, target, tuple(q for q in cal if q.set != value), tuple(ev), tuple(shows), tuple(bases), "toy",
                   source="toy-lang", extra={"attribute": attr, "value": value, "n_per": n_per, "world": "toy-lang",
                                             "routes": variants, "route_phrases": [r.phrase for r in held], "heldout_words": words,
                                             "words": routes(value)[0].phrase})  # fmt: skip
