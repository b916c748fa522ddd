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
never sees: the generalisation gap).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import torch

from .options import ANCHORED, GUIDED_AWAY, OBJECTIVES
from .training import batches

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
    #: the UNet's extra conditioning per example (SDXL: pooled text_embeds and time_ids), or None
    added: dict[str, torch.Tensor] | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    def added_at(self, idx, device=None) -> dict | None:
        """``added_cond_kwargs`` for the examples ``idx`` (None for models without)."""
        if not self.added:
            return None
        return {k: v[idx].to(device) if device is not None else v[idx] for k, v in self.added.items()}

    def take(self, idx) -> Examples:
        """The examples ``idx`` as a new set."""
        frozen = None if self.frozen is None else self.frozen[idx]
        return Examples(self.x[idx], self.t[idx], self.cond[idx], self.target[idx], frozen, self.added_at(idx))

    @staticmethod
    def cat(parts: Sequence[Examples]) -> Examples:
        """One set of several, in order."""
        out = {f.name: None if any(getattr(p, f.name) is None for p in parts) else torch.cat([getattr(p, f.name) for p in parts])
               for f in fields(Examples) if f.name != "added"}  # fmt: skip
        added = {k: torch.cat([p.added[k] for p in parts]) for k in parts[0].added} if parts[0].added else None
        return Examples(**out, added=added)


def _unet_calls(pipe, texts: list[str], seeds: list[int], steps: int, guidance: float, stop: int | None = None) -> list[tuple]:
    """(sample, timestep, encoder_hidden_states, prediction, added_cond_kwargs) of every UNet call of
    one generation (the last None for models without extra conditioning); with ``stop``, only the
    first ``stop`` calls (the generation is cut there)."""
    from ..models.hooks import DenoiserCall, Hook, StopForward, hooks
    from ..recording.hooks import run_pipe

    calls = []

    def hook(module, args, kwargs, out):
        c = DenoiserCall.of(args, kwargs)
        pred = out[0] if isinstance(out, tuple) else out.sample
        added = {k: v.detach() for k, v in c.added.items()} if c.added else None
        calls.append((c.sample.detach(), torch.as_tensor(c.timestep).detach(), c.context.detach(), pred.detach(), added))
        if stop is not None and len(calls) >= stop:
            raise StopForward

    with hooks(Hook(pipe.unet, hook, with_kwargs=True), stop=True), torch.no_grad():
        run_pipe(pipe, texts, seeds, steps, guidance)
    return calls


def _sampling(pipe, steps: int | None, guidance: float | None) -> tuple[int, float]:
    from ..models.loading import generation_defaults

    d = generation_defaults(pipe)
    steps = d["steps"] if steps is None else steps
    guidance = d["guidance"] if guidance is None else guidance
    if guidance <= 1.0:
        raise ValueError(f"guidance={guidance}: ESD and AC need the empty prompt's prediction, so sample with guidance > 1")
    return steps, guidance


def _split(call: tuple, n: int, eta: float) -> Examples:
    """The cond half of one CFG call as examples with ESD's target."""
    sample, t, ehs, pred, extra = call
    uncond, cond = pred[:n], pred[n:]
    added = {k: v[n:].cpu() for k, v in extra.items()} if extra else None
    t = t.expand(n) if t.dim() == 0 else t[n:]
    # kept on the CPU: a batch moves to the model's device when used (SD-size sets stay out of GPU memory)
    return Examples(sample[n:].cpu(), t.cpu(), ehs[n:].cpu(), (uncond - eta * (cond - uncond)).cpu(), cond.cpu(), added)


def conditioning(pipe, texts: list[str], guidance: float = 2.0) -> tuple[torch.Tensor, dict | None]:
    """The UNet's text conditioning of each prompt (and SDXL's extra conditioning), from one call.
    The call runs with classifier-free guidance (a ``guidance`` of 1 or less would leave out the
    unconditional half this splits off; the embeddings do not depend on its value)."""
    guidance = guidance if guidance > 1 else 2.0
    _, _, ehs, _, extra = _unet_calls(pipe, texts, [0] * len(texts), 1, guidance, stop=1)[0]
    n = len(texts)
    return ehs[n:], ({k: v[n:] for k, v in extra.items()} if extra else None)


@torch.no_grad()
def _frozen(pipe, x, t, cond, added, batch: int = 32) -> torch.Tensor:
    dev = next(pipe.unet.parameters()).device
    out = []
    for i in range(0, len(x), batch):
        a = None if added is None else {k: v[i : i + batch].to(dev) for k, v in added.items()}
        out.append(pipe.unet(x[i : i + batch].to(dev), t[i : i + batch].to(dev), encoder_hidden_states=cond[i : i + batch].to(dev),
                             added_cond_kwargs=a).sample.cpu())  # fmt: skip
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
    ex = Examples.cat([_split(call, n, eta) for call in _unet_calls(pipe, list(prompts), list(seeds), steps, guidance)])
    if objective == ANCHORED:
        if anchors is None or len(anchors) != n:
            raise ValueError(
                "AC needs one anchor prompt per concept prompt (e.g. 'a red circle' for 'a red circle with stripes')"
            )
        first = _unet_calls(pipe, list(anchors), list(seeds), 1, guidance)[0]
        reps = len(ex) // n  # the examples are ordered call by call, prompt by prompt
        a = first[2][n:].repeat(reps, 1, 1)  # the anchors' cond embeddings
        extra = {k: v[n:].repeat(reps, *([1] * (v.dim() - 1))) for k, v in first[4].items()} if first[4] else None
        ex.target = _frozen(pipe, ex.x, ex.t, a, extra)
    return ex


def preservation_examples(pipe, prompts: Sequence[str], seeds: Sequence[int], steps=None, guidance=None) -> Examples:
    """Examples whose target is the frozen model's own prediction: holds unrelated prompts in place."""
    ex = frozen_examples(pipe, prompts, seeds, GUIDED_AWAY, eta=0.0, steps=steps, guidance=guidance)
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
        raise NotImplementedError

    def batches(self, iterations: int) -> Iterator[Examples]:
        for it in range(iterations):
            yield self.draws(it)

    def _spread(self, n: int, iterations: int) -> list[int]:
        """About ``n // batch`` training iterations, evenly over ``iterations``."""
        k = max(1, n // self.batch)
        return sorted({round(i * (iterations - 1) / max(1, k - 1)) for i in range(k)})


class FreshESD(_Fresh):
    """ESD's reference protocol: every iteration, ``batch`` new draws of (concept prompt, seed, stopping
    step); the frozen model samples each prompt from its seed at ``guidance`` up to its step, and
    the example is that UNet call's x_t with ESD's target (one cut trajectory per iteration)."""

    def __init__(self, pipe, prompts: Sequence[str], eta: float = 1.0, steps: int | None = None, guidance: float | None = None,
                 batch: int = 1, seed: int = 0):  # fmt: skip
        if len(prompts) == 0:
            raise ValueError("no concept prompts: give at least one")
        self.pipe, self.prompts, self.eta, self.batch, self.seed = pipe, list(prompts), eta, batch, seed
        self.steps, self.guidance = _sampling(pipe, steps, guidance)

    def _examples(self, draws: list[tuple[int, int, int]]) -> Examples:
        """Examples of (prompt index, seed, stopping step) draws, sampled 16 at a time."""
        parts = []
        for lo in range(0, len(draws), 16):
            chunk = draws[lo : lo + 16]
            texts, seeds, stops = [self.prompts[i] for i, _, _ in chunk], [s for _, s, _ in chunk], [t for _, _, t in chunk]
            calls = _unet_calls(self.pipe, texts, seeds, self.steps, self.guidance, stop=max(stops) + 1)
            per_call = {s: _split(calls[s], len(chunk), self.eta) for s in set(stops)}
            parts += [per_call[s].take(slice(b, b + 1)) for b, s in enumerate(stops)]
        return Examples.cat(parts)

    def _plan(self, it: int) -> list[tuple[int, int, int]]:
        return list(zip(*_plan(self.seed, it, self.batch, len(self.prompts), self.steps)))

    def draws(self, it: int) -> Examples:
        """The examples training iteration ``it`` draws."""
        return self._examples(self._plan(it))

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
                 guidance: float | None = None, batch: int = 4, seed: int = 0):  # fmt: skip
        from diffusers import DDPMScheduler

        if len(anchors) != len(prompts) or not prompts:
            raise ValueError(
                "AC needs one anchor prompt per concept prompt (e.g. 'a red circle' for 'a red circle with stripes')"
            )
        self.pipe, self.batch, self.seed, self.pool, self.anchors = pipe, batch, seed, pool, list(anchors)
        self.steps, self.guidance = _sampling(pipe, steps, guidance)
        self.noise = DDPMScheduler.from_config(pipe.scheduler.config)
        self.cond, self.added = conditioning(pipe, list(prompts), self.guidance)
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
            x0 = run_pipe(self.pipe, [self.anchors[i % a] for i in chunk], seeds, self.steps, self.guidance).images.cpu()
            self._x0.update({(heldout, i): x for i, x in zip(chunk, x0)})

    def _plan(self, it: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(1_000_003 * self.seed + it)
        pick = torch.randint(0, self.pool, (self.batch,), generator=g)
        shape = self._x0[(False, 0)].shape
        noise = torch.randn((self.batch, *shape), generator=g)
        t = torch.randint(0, self.noise.config.num_train_timesteps, (self.batch,), generator=g)
        return pick, noise, t

    def _examples(self, its: list[int], heldout: bool = False) -> Examples:
        plans = [self._plan(it) for it in its]
        pick, noise, t = (torch.cat(p) for p in zip(*plans))
        self._images(pick.tolist(), heldout)
        x0 = torch.stack([self._x0[(heldout, int(i))] for i in pick])
        x = self.noise.add_noise(x0.float(), noise, t).to(self.cond.dtype)
        w = pick % len(self.anchors)
        added = {k: v[w].cpu() for k, v in self.added.items()} if self.added else None
        anchor_added = {k: v[w] for k, v in self.anchor_added.items()} if self.anchor_added else None
        target = _frozen(self.pipe, x, t, self.anchor[w], anchor_added)
        return Examples(x, t, self.cond[w].cpu(), target, None, added)

    def draws(self, it: int) -> Examples:
        """The examples training iteration ``it`` draws."""
        return self._examples([it])

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
        dev = next(pipe.unet.parameters()).device
        pred = torch.cat([pipe.unet(ex.x[i : i + batch].to(dev), ex.t[i : i + batch].to(dev),
                                    encoder_hidden_states=ex.cond[i : i + batch].to(dev),
                                    added_cond_kwargs=ex.added_at(slice(i, i + batch), dev)).sample.cpu()
                          for i in range(0, len(ex), batch)])  # fmt: skip
    return float(torch.nn.functional.mse_loss(pred.float(), ex.target.float()))
