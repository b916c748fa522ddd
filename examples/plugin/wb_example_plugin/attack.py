"""'emphasis': a black-box prompt attack that repeats the concept's own words at the end of the
prompt (once per budget step): does an edit hold when the concept is asked for insistently?"""

from __future__ import annotations

from workbench.attacks.methods import AttackSpec


def run(a):
    from workbench.editing.edits import applied
    from workbench.evaluation.generation import generate

    attacked = []
    for text in a.texts:
        base = set(a.concept.base_of(text).split())
        words = " ".join(w for w in text.split() if w not in base) or text
        attacked.append(text + ("," + " " + words) * a.budget)
    with applied(a.pipe, a.edit):
        after = a.shown(generate(a.pipe, attacked, a.seeds, a.steps, a.guidance), a.targets)
    a.info["repeats"] = a.budget
    return after, attacked


SPEC = AttackSpec("emphasis", "emphasis (example plugin): the concept's words repeated at the end of the prompt", run,
                  budget=2, unit="repeats", examples=False)  # fmt: skip
