"""Where an eraser's training examples come from: the frozen model's x_t, and the target there.

Two protocols (``PROTOCOLS``):

- 'fresh', the reference code's, and the default. ESD (rohitgandikota/erasing, ``esd_sd.py``): every
  iteration draws new x_t, a concept prompt, a new seed and a random stopping step of the frozen
  model's trajectory at the sampling guidance; the target is computed at that x_t
  (``FreshESD``). AC (nupurkmr9/concept-ablation, ``train.py``, model-based loss): the frozen model
  draws a pool of anchor images once; every iteration takes some of them, new noise and a
  uniform training timestep, x_t = q(x_t | x_0), and the target is the frozen prediction for the
  anchor caption (``FreshAC``).
- 'cached', a deviation for speed: the frozen model samples the calibration prompts once with
  their own seeds and every UNet call of those trajectories becomes a fixed set of examples
  (``frozen_examples``), which training draws minibatches from (``Cached``).

Targets, at the same x_t:

- ESD (Gandikota et al. 2023):  e*(x_t, "") - eta * (e*(x_t, c) - e*(x_t, ""))  (the reference's
  ``negative_guidance`` is eta + 1: e(c) - ng * (e(c) - e("")) is the same target)
- AC  (Kumari et al. 2023):     e*(x_t, anchor)   (the anchor prompt paired with c)

A source gives ``batches(iterations)`` (one ``Examples`` per iteration), ``train(n)`` (examples
it trained on, to measure the fit) and ``heldout(n)`` (the same distribution with seeds training
never sees: the generalisation gap). Fresh sources draw ``AHEAD`` iterations' examples in one
sampler call (each its own prompt, seed and stopping step, each trajectory cut at its own step):
the frozen model draws them, so they are the examples one draw per iteration gives, in fewer,
larger denoiser calls.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import torch

from .options import ANCHORED, GUIDED_AWAY, OBJECTIVES
from .training import batches

#: iterations whose fresh examples are drawn together (one sampler call of up to this many trajectories)
AHEAD = 16
#: seeds of held-out draws start here; training draws take seeds below it (the reference: [0, 2**15])
HELDOUT_SEED = 2**20


@dataclass
class Examples:
    """Frozen-model training examples, one per (prompt, UNet call): inputs and targets."""

    x: torch.Tensor  # (E, C, H, W) noisy latents
    t: torch.Tensor  # (E,) timesteps
    cond: torch.Tensor  # (E, L, D) the concept prompt's embeddings
    target: torch.Tensor  # (E, C, H, W) what the edited model should predict
    #: (E, C, H, W) the frozen model's own prediction for the concept prompt (None where training needs none)
    frozen: torch.Tensor | None
    #: the denoiser's extra conditioning per example (SDXL: pooled text_embeds and time_ids; a
    #: transformer's pooled projection and guidance embedding), or None
    added: dict[str, torch.Tensor] | None = None
    #: the denoiser's inputs without a batch row, the same for every example (FLUX's position ids)
    shared: dict | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    def shared_on(self, device=None) -> dict | None:
        """``shared`` on ``device``."""
        return _on(self.shared, device)

    def added_at(self, idx, device=None) -> dict | None:
        """``added_cond_kwargs`` for the examples ``idx`` (None for models without)."""
        if not self.added:
            return None
        return {k: v[idx].to(device) if device is not None else v[idx] for k, v in self.added.items()}

    def take(self, idx) -> Examples:
        """The examples ``idx`` as a new set."""
        frozen = None if self.frozen is None else self.frozen[idx]
        return Examples(self.x[idx], self.t[idx], self.cond[idx], self.target[idx], frozen, self.added_at(idx), self.shared)

    @staticmethod
    def cat(parts: Sequence[Examples]) -> Examples:
        """One set of several, in order."""
        out = {f.name: None if any(getattr(p, f.name) is None for p in parts) else torch.cat([getattr(p, f.name) for p in parts])
               for f in fields(Examples) if f.name not in ("added", "shared")}  # fmt: skip
        added = {k: torch.cat([p.added[k] for p in parts]) for k in parts[0].added} if parts[0].added else None
        return Examples(**out, added=added, shared=parts[0].shared)


def _on(inputs: dict | None, device) -> dict | None:
    """A dict of inputs with its tensors on ``device`` (None: as they are)."""
    if not inputs or device is None:
        return inputs
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in inputs.items()}


def denoiser_calls(pipe, texts: list[str], seeds: list[int], steps: int, guidance: float, stop: int | None = None,
                    size: int | None = None) -> list:  # fmt: skip
    """Every denoiser call of one generation (``models.denoise.Captured``) at image side ``size``
    (None: the model's own); with ``stop``, only the first ``stop`` calls (the generation is cut there)."""
    from ..models.denoise import capture
    from ..models.families import denoiser_of
    from ..models.hooks import Hook, StopForward, hooks
    from ..recording.hooks import run_pipe

    calls = []

    def hook(module, args, kwargs, out):
        calls.append(capture(pipe, args, kwargs, out))
        if stop is not None and len(calls) >= stop:
            raise StopForward

    with hooks(Hook(denoiser_of(pipe), hook, with_kwargs=True), stop=True), torch.no_grad():
        run_pipe(pipe, texts, seeds, steps, guidance, size)
    return calls


def _sampling(pipe, steps: int | None, guidance: float | None) -> tuple[int, float]:
    from ..models.families import family_of
    from ..models.loading import generation_defaults

    d = generation_defaults(pipe)
    steps = d["steps"] if steps is None else steps
    guidance = d["guidance"] if guidance is None else guidance
    if guidance <= 1.0 and not family_of(pipe).distilled(pipe):
        raise ValueError(f"guidance={guidance}: ESD and AC need the empty prompt's prediction, so sample with guidance > 1")
    return steps, guidance


def _rows(part, lo: int):
    """Rows ``lo:`` of a tensor or of each tensor of a dict (None stays None)."""
    if part is None:
        return None
    if isinstance(part, dict):
        return {k: v[lo:].cpu() for k, v in part.items()}
    return part[lo:].cpu()


def call_examples(pipe, call, n: int, eta: float, empty: tuple | None = None) -> Examples:
    """One denoiser call's concept rows as examples with ESD's target. With classifier-free guidance
    the batch is [uncond, cond]; a guidance-distilled model (FLUX.1) makes one call per step, so the
    empty prompt's prediction at the same x_t is one more call (``_null``; ``empty``: the empty
    prompt's ``conditioning``, computed here when not given)."""
    from ..models.families import family_of

    t = call.timestep.expand(call.sample.shape[0]) if call.timestep.dim() == 0 else call.timestep
    if family_of(pipe).distilled(pipe):
        cond = call.prediction
        uncond = _null(pipe, call, empty if empty is not None else conditioning(pipe, [""]))
        lo = 0
    else:
        lo = call.sample.shape[0] - n
        uncond, cond = call.prediction[:lo], call.prediction[lo:]
    # kept on the CPU: a batch moves to the model's device when used (SD-size sets stay out of GPU memory)
    return Examples(call.sample[lo:].cpu(), t[lo:].cpu(), call.context[lo:].cpu(), (uncond - eta * (cond - uncond)).cpu(),
                    cond.cpu(), _rows(call.added, lo), call.shared)  # fmt: skip


def empty_conditioning(pipe) -> tuple | None:
    """The empty prompt's conditioning where ``call_examples`` needs it (guidance-distilled models),
    made once per set of examples; None elsewhere."""
    from ..models.families import family_of

    return conditioning(pipe, [""]) if family_of(pipe).distilled(pipe) else None


@torch.no_grad()
def _null(pipe, call, empty: tuple) -> torch.Tensor:
    """The frozen prediction for the empty prompt at a call's x_t (its other inputs unchanged):
    what stands in for the unconditional branch of a guidance-distilled model, as the ESD
    reference's FLUX script does (rohitgandikota/erasing ``esd_flux``: the empty prompt's
    prediction at the sampled x_t). The guidance embedding stays the sampling call's (that script
    samples x_t at 3.5 and predicts at 1.0; docs/transformers.md)."""
    from ..models.denoise import predict

    n = call.sample.shape[0]
    empty, extra = empty
    added = dict(call.added or {})
    added.update({k: v.expand(n, *v.shape[1:]) for k, v in (extra or {}).items() if k != "guidance"})
    return predict(pipe, call.sample, call.timestep, empty.to(call.context).expand(n, *empty.shape[1:]), added, call.shared)


def conditioning(pipe, texts: list[str], guidance: float = 2.0) -> tuple[torch.Tensor, dict | None]:
    """The denoiser's text conditioning of each prompt (and its per-row extra conditioning), from one
    call. A model with classifier-free guidance runs it with guidance (a ``guidance`` of 1 or less
    would leave out the unconditional half this splits off; the embeddings do not depend on its value)."""
    guidance = guidance if guidance > 1 else 2.0
    call = denoiser_calls(pipe, texts, [0] * len(texts), 1, guidance, stop=1)[0]
    lo = call.sample.shape[0] - len(texts)
    return call.context[lo:], ({k: v[lo:] for k, v in call.added.items()} if call.added else None)


@torch.no_grad()
def _frozen(pipe, x, t, cond, added, shared=None, batch: int = 32) -> torch.Tensor:
    from ..models.denoise import device_of, predict

    dev = device_of(pipe)
    shared, out = _on(shared, dev), []
    for i in range(0, len(x), batch):
        a = None if added is None else {k: v[i : i + batch].to(dev) for k, v in added.items()}
        out.append(
            predict(pipe, x[i : i + batch].to(dev), t[i : i + batch].to(dev), cond[i : i + batch].to(dev), a, shared).cpu()
        )
    return torch.cat(out)


@torch.no_grad()
def frozen_examples(
    pipe,
    prompts: Sequence[str],
    seeds: Sequence[int],
    objective: str = GUIDED_AWAY,
    anchors: Sequence[str] | None = None,
    eta: float = 1.0,
    steps: int | None = None,
    guidance: float | None = None,
    size: int | None = None,
) -> Examples:
    """Sample the concept prompts with the frozen model and build every training example once.

    The trajectory needs classifier-free guidance (guidance > 1), since ESD's target uses the empty
    prompt's prediction at the same x_t; AC needs ``anchors``, one per prompt."""

    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}: use one of {OBJECTIVES}")
    if len(prompts) == 0:
        raise ValueError("no concept prompts: give at least one")
    steps, guidance = _sampling(pipe, steps, guidance)
    n = len(prompts)
    calls = denoiser_calls(pipe, list(prompts), list(seeds), steps, guidance, size=size)
    empty = empty_conditioning(pipe)
    ex = Examples.cat([call_examples(pipe, call, n, eta, empty) for call in calls])
    if objective == ANCHORED:
        if anchors is None or len(anchors) != n:
            raise ValueError(
                "AC needs one anchor prompt per concept prompt (e.g. 'a red circle' for 'a red circle with stripes')"
            )
        anchor, anchor_added = conditioning(pipe, list(anchors), guidance)
        reps = len(ex) // n  # the examples are ordered call by call, prompt by prompt
        a = anchor.repeat(reps, 1, 1)  # the anchors' cond embeddings
        extra = {k: v.repeat(reps, *([1] * (v.dim() - 1))) for k, v in anchor_added.items()} if anchor_added else None
        ex.target = _frozen(pipe, ex.x, ex.t, a, extra, ex.shared)
    return ex


def preservation_examples(pipe, prompts: Sequence[str], seeds: Sequence[int], steps=None, guidance=None, size=None) -> Examples:
    """Examples whose target is the frozen model's own prediction: holds unrelated prompts in place."""
    ex = frozen_examples(pipe, prompts, seeds, GUIDED_AWAY, eta=0.0, steps=steps, guidance=guidance, size=size)
    ex.target = ex.frozen.clone()
    return ex


# -- the sources training reads ---------------------------------------------------------------------
class Cached:
    """The cached protocol: minibatches drawn with replacement from one fixed set of examples."""

    protocol = "cached"

    def __init__(self, ex: Examples, batch: int = 8, seed: int = 0, heldout=None):
        self.ex, self.batch, self.seed, self._heldout = ex, batch, seed, heldout

    def batches(self, iterations: int) -> Iterator[Examples]:
        for idx in batches(len(self.ex), self.batch, iterations, self.seed):
            yield self.ex.take(idx)

    def train(self, n: int | None = None, iterations: int | None = None) -> Examples:
        """Every example training drew from."""
        return self.ex

    def heldout(self, n: int | None = None, iterations: int | None = None) -> Examples:
        """The same prompts sampled from seeds training never saw (``heldout``: a function making them)."""
        if self._heldout is None:
            raise ValueError("this cached set has no held-out examples: give Cached(..., heldout=a function making them)")
        return self._heldout()


def _plan(seed: int, it: int, batch: int, n_prompts: int, steps: int) -> tuple[list[int], list[int], list[int]]:
    """One iteration's draws: prompt indices, seeds and stopping steps, a pure function of its arguments."""
    g = torch.Generator().manual_seed(1_000_003 * seed + it)
    prompts = torch.randint(0, n_prompts, (batch,), generator=g).tolist()
    seeds = torch.randint(0, 2**15, (batch,), generator=g).tolist()
    stops = torch.randint(0, steps, (batch,), generator=g).tolist()
    return prompts, seeds, stops


class _Fresh:
    """What both reference protocols share: ``draws(it)`` per iteration, and the training
    iterations that ``train`` and ``heldout`` re-draw (spread evenly over the run)."""

    protocol = "fresh"
    batch: int

    def draws(self, it: int) -> Examples:
        """The examples training iteration ``it`` draws."""
        return self.draws_of([it])

    def draws_of(self, its: list[int]) -> Examples:
        """The examples of iterations ``its``, ``batch`` each, in order, drawn together."""
        raise NotImplementedError

    def batches(self, iterations: int, ahead: int = AHEAD) -> Iterator[Examples]:
        """One ``Examples`` per iteration; ``ahead`` iterations drawn in one go (``AHEAD``)."""
        for lo in range(0, iterations, ahead):
            its = list(range(lo, min(lo + ahead, iterations)))
            ex = self.draws_of(its)
            for k in range(len(its)):
                yield ex.take(slice(k * self.batch, (k + 1) * self.batch))

    def _spread(self, n: int, iterations: int) -> list[int]:
        """About ``n // batch`` training iterations, evenly over ``iterations``."""
        k = max(1, n // self.batch)
        return sorted({round(i * (iterations - 1) / max(1, k - 1)) for i in range(k)})


class FreshESD(_Fresh):
    """ESD's reference protocol: every iteration, ``batch`` new draws of (concept prompt, seed, stopping
    step); the frozen model samples each prompt from its seed at ``guidance`` up to its step, and
    the example is that UNet call's x_t with ESD's target (one cut trajectory per iteration)."""

    def __init__(self, pipe, prompts: Sequence[str], eta: float = 1.0, steps: int | None = None, guidance: float | None = None,
                 batch: int = 1, seed: int = 0, size: int | None = None):  # fmt: skip
        if len(prompts) == 0:
            raise ValueError("no concept prompts: give at least one")
        self.pipe, self.prompts, self.eta, self.batch, self.seed = pipe, list(prompts), eta, batch, seed
        self.size = size
        self.steps, self.guidance = _sampling(pipe, steps, guidance)
        self.empty = empty_conditioning(pipe)  # the empty prompt's, once (distilled models' stand-in branch)

    def _examples(self, draws: list[tuple[int, int, int]]) -> Examples:
        """Examples of (prompt index, seed, stopping step) draws, sampled 16 at a time."""
        parts = []
        for lo in range(0, len(draws), 16):
            chunk = draws[lo : lo + 16]
            texts, seeds, stops = [self.prompts[i] for i, _, _ in chunk], [s for _, s, _ in chunk], [t for _, _, t in chunk]
            calls = denoiser_calls(self.pipe, texts, seeds, self.steps, self.guidance, stop=max(stops) + 1, size=self.size)
            per_call = {s: call_examples(self.pipe, calls[s], len(chunk), self.eta, self.empty) for s in set(stops)}
            parts += [per_call[s].take(slice(b, b + 1)) for b, s in enumerate(stops)]
        return Examples.cat(parts)

    def _plan(self, it: int) -> list[tuple[int, int, int]]:
        return list(zip(*_plan(self.seed, it, self.batch, len(self.prompts), self.steps)))

    def draws_of(self, its: list[int]) -> Examples:
        return self._examples([d for it in its for d in self._plan(it)])

    def _trained(self, n: int, iterations: int) -> list[tuple[int, int, int]]:
        return [d for it in self._spread(n, iterations) for d in self._plan(it)]

    def train(self, n: int, iterations: int = 200) -> Examples:
        """About ``n`` of the examples training drew, from iterations spread over its ``iterations``."""
        return self._examples(self._trained(n, iterations))

    def heldout(self, n: int, iterations: int = 200) -> Examples:
        """``train(n)``'s draws (prompts and stopping steps) from seeds training never sees."""
        return self._examples([(i, s + HELDOUT_SEED, t) for i, s, t in self._trained(n, iterations)])


class FreshAC(_Fresh):
    """AC's reference protocol (model-based loss): the frozen model draws ``pool`` anchor images once
    (the anchors in turn, seed by seed); every iteration takes ``batch`` of them with new noise and
    a uniform training timestep (x_t = q(x_t | x_0), DDPM's noising from the model's scheduler
    config), and the target is the frozen prediction for the anchor at that x_t; the edited model
    sees the concept prompt paired with the anchor. Held-out draws are the training draws with each
    anchor image redrawn from a seed training never saw."""

    def __init__(self, pipe, prompts: Sequence[str], anchors: Sequence[str], pool: int = 1000, steps: int | None = None,
                 guidance: float | None = None, batch: int = 4, seed: int = 0, size: int | None = None):  # fmt: skip
        from diffusers import DDPMScheduler

        from ..models.families import family_of

        if len(anchors) != len(prompts) or not prompts:
            raise ValueError(
                "AC needs one anchor prompt per concept prompt (e.g. 'a red circle' for 'a red circle with stripes')"
            )
        self.pipe, self.batch, self.seed, self.pool, self.anchors = pipe, batch, seed, pool, list(anchors)
        self.size = size
        self.steps, self.guidance = _sampling(pipe, steps, guidance)
        self.family = family_of(pipe)
        self.noise = None if self.family.flow else DDPMScheduler.from_config(pipe.scheduler.config)
        self.cond, self.added = conditioning(pipe, list(prompts), self.guidance)
        self.shared = denoiser_calls(pipe, [prompts[0]], [0], 1, self.guidance, stop=1, size=size)[0].shared
        self.anchor, self.anchor_added = conditioning(pipe, list(anchors), self.guidance)
        self._x0: dict[tuple[bool, int], torch.Tensor] = {}
        self._images(range(pool), False)

    @torch.no_grad()
    def _images(self, idx, heldout: bool) -> None:
        """Draw the pool's anchor images ``idx`` not drawn yet (image i: anchor i mod A, seed i div A)."""
        from ..recording.hooks import run_pipe

        todo = sorted({int(i) for i in idx} - {i for h, i in self._x0 if h == heldout})
        a = len(self.anchors)
        for lo in range(0, len(todo), 16):
            chunk = todo[lo : lo + 16]
            seeds = [i // a + (HELDOUT_SEED if heldout else 0) for i in chunk]
            x0 = run_pipe(
                self.pipe, [self.anchors[i % a] for i in chunk], seeds, self.steps, self.guidance, self.size
            ).images.cpu()
            self._x0.update({(heldout, i): x for i, x in zip(chunk, x0)})

    def _plan(self, it: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(1_000_003 * self.seed + it)
        pick = torch.randint(0, self.pool, (self.batch,), generator=g)
        shape = self._x0[(False, 0)].shape
        noise = torch.randn((self.batch, *shape), generator=g)
        t = torch.randint(0, 1000 if self.noise is None else self.noise.config.num_train_timesteps, (self.batch,), generator=g)
        return pick, noise, t

    def _noised(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t and the denoiser's timestep argument: DDPM's q(x_t | x_0) from the model's scheduler
        config, or for flow matching x_t = (1 - s) x_0 + s noise at s = t / 1000, the argument in
        the units the pipeline passes (FLUX: s itself)."""
        if self.noise is not None:
            return self.noise.add_noise(x0.float(), noise, t), t
        s = (t.float() / 1000).view(-1, *([1] * (x0.dim() - 1)))
        return (1 - s) * x0.float() + s * noise, t.float() / self.family.timestep_scale

    def _examples(self, its: list[int], heldout: bool = False) -> Examples:
        plans = [self._plan(it) for it in its]
        pick, noise, t = (torch.cat(p) for p in zip(*plans))
        self._images(pick.tolist(), heldout)
        x0 = torch.stack([self._x0[(heldout, int(i))] for i in pick])
        x, arg = self._noised(x0, noise, t)
        x = x.to(self.cond.dtype)
        w = pick % len(self.anchors)
        added = {k: v[w].cpu() for k, v in self.added.items()} if self.added else None
        return Examples(x, arg, self.cond[w].cpu(), self._target(x, arg, w, x0, noise, t), None, added, self.shared)

    def _target(self, x: torch.Tensor, arg: torch.Tensor, w: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor,
                t: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """The regression target at x_t (``arg``: the denoiser's timestep argument; ``w``: each example's
        prompt; ``x0``, ``noise``, ``t``: how x_t was made): the frozen prediction for the anchor."""
        anchor_added = {k: v[w] for k, v in self.anchor_added.items()} if self.anchor_added else None
        return _frozen(self.pipe, x, arg, self.anchor[w], anchor_added, self.shared)

    def draws_of(self, its: list[int]) -> Examples:
        return self._examples(list(its))

    def train(self, n: int, iterations: int = 200) -> Examples:
        """About ``n`` of the examples training drew, from iterations spread over its ``iterations``."""
        return self._examples(self._spread(n, iterations))

    def heldout(self, n: int, iterations: int = 200) -> Examples:
        """``train(n)``'s draws with every anchor image redrawn from a seed training never saw."""
        return self._examples(self._spread(n, iterations), heldout=True)


ExampleSource = Cached | FreshESD | FreshAC


@torch.no_grad()
def objective_loss(pipe, ex: Examples, edit=None, batch: int = 50) -> float:
    """Mean squared error of the (edited) model's prediction against the examples' targets, over all
    of them: how far an edit meets the erasing objective (ESD's or AC's), whatever made it."""
    import contextlib

    from .edits import applied

    ctx = applied(pipe, edit) if edit is not None else contextlib.nullcontext()
    with ctx:
        pred = _frozen(pipe, ex.x, ex.t, ex.cond, ex.added, ex.shared, batch)
    return float(torch.nn.functional.mse_loss(pred.float(), ex.target.float()))
