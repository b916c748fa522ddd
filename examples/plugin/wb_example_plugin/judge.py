"""'brightness' (brightness:T): an image 'shows' the concept when its mean brightness exceeds T
(default 0.5). A judge that knows nothing of concepts, to show the interface: images and prompts
in, ``Verdicts`` out."""

from __future__ import annotations

from workbench.evaluation.judges import Judge, JudgeError, JudgeSpec, Verdicts


class Brightness(Judge):
    def __init__(self, threshold: float):
        self.threshold = threshold
        self.name = f"brightness:{threshold:g}"

    def __call__(self, images, prompts) -> Verdicts:
        score = images.float().mean(dim=(1, 2, 3)).numpy()
        return Verdicts(shown=score > self.threshold, score=score)


def build(arg: str, concept, device):
    try:
        return Brightness(float(arg) if arg else 0.5)
    except ValueError:
        raise JudgeError(f"judge 'brightness:{arg}': the threshold must be a number, e.g. brightness:0.4") from None


SPEC = JudgeSpec("brightness", "brightness[:T] (example plugin): mean brightness above T (default 0.5)", build)
