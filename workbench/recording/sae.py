"""Training sparse autoencoders on token samples: TopK (and BatchTopK), streamed, resumable.

No SAE library is used for the training itself (SAELens, sparsify and overcomplete all read their
activations from a language model's forward or their own caches, and none is installable on the
machines here without a network); what they share is the format, which ``store.saes`` writes:
SAELens's, so the result loads there unchanged. What is ours is the source: a store's token
samples (``store.samples``), read one prompt chunk at a time into a shuffle buffer of ``buffer``
prompts, so memory stays flat however large the store.

The recipe is the usual one (Gao et al. 2024, SAELens's TopK trainer): inputs scaled so their
mean squared norm is d_in (the scale is folded back into the saved weights: the SAE reads raw
activations), decoder rows kept at unit norm, encoder initialised as the decoder's transpose,
b_dec at the mean input, Adam, and an auxiliary loss (coefficient 1/32) that lets features dead
for ``dead_after`` tokens reconstruct the residual. BatchTopK keeps the k x batch largest
activations of a batch and is saved as a JumpReLU SAE with the running threshold (as SAELens does).
A checkpoint after every buffer makes a killed run resume to the same weights.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..store.saes import SAE, save_sae

CHECKPOINT = "checkpoint.safetensors"


@dataclass(frozen=True)
class SAEOptions:
    """How to train: k active features, d_sae = expansion x d_in, TopK or BatchTopK, Adam's lr,
    tokens a batch, passes over the samples, prompts a shuffle buffer, the seed, the sampled calls
    used (None: all) and the device (None: CUDA if there is one)."""

    k: int = 32
    expansion: int = 16
    architecture: str = "topk"
    lr: float = 5e-4
    batch_size: int = 4096
    epochs: int = 1
    buffer: int = 64
    seed: int = 0
    steps: tuple[int, ...] | None = None
    dead_after: int = 200_000
    aux_k: int = 256
    device: str | None = None

    def __post_init__(self):
        if self.architecture not in ("topk", "batchtopk"):
            raise ValueError(f"architecture must be 'topk' or 'batchtopk', not {self.architecture!r}")
        for name in ("k", "expansion", "batch_size", "epochs", "buffer", "dead_after", "aux_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, not {self.lr}")


class TokenSource:
    """Per-prompt token matrices (tokens, d_in) float32: ``n`` prompts, ``read(i)``."""

    n: int
    d_in: int
    about: dict

    def read(self, i: int) -> np.ndarray:
        raise NotImplementedError


class ArraySource(TokenSource):
    """Samples held in memory: (prompt, step, token, d_in)."""

    def __init__(self, x: np.ndarray, about: dict | None = None):
        self.x = np.asarray(x)
        self.n, self.d_in, self.about = self.x.shape[0], self.x.shape[-1], dict(about or {})

    def read(self, i: int) -> np.ndarray:
        return self.x[i].reshape(-1, self.d_in).astype(np.float32)


class StoreSource(TokenSource):
    """A store's token samples of one site (``<store>/samples/<site>/x``), at chosen calls."""

    def __init__(self, store: str | Path, site: str, steps: tuple[int, ...] | None = None):
        import zarr

        from ..store.samples import GROUP, open_samples

        tree = open_samples(store)  # refuses a half-sampled group
        if site not in tree.attrs["sites"]:
            raise ValueError(f"{store} has no token samples of {site}: its samples are of {', '.join(tree.attrs['sites'])}")
        have = list(tree.attrs["steps"])
        missing = [t for t in steps or () if t not in have]
        if missing:
            raise ValueError(f"calls {missing} were not sampled (the samples hold calls {have}): choose among them")
        self.at = [have.index(t) for t in steps] if steps else list(range(len(have)))
        self.x = zarr.open_group(str(Path(store) / GROUP), mode="r")[site]["x"]
        self.n, self.d_in = int(tree.attrs["n"]), int(self.x.shape[-1])
        self.about = {"store": str(store), "site": site, "model": tree.attrs.get("model_id", ""), "prompts": self.n,
                      "weights_hash": tree.attrs.get("weights_hash"), "steps": [have[i] for i in self.at]}  # fmt: skip

    def read(self, i: int) -> np.ndarray:
        return np.asarray(self.x[i])[self.at].reshape(-1, self.d_in).astype(np.float32)


def inference_acts(pre: torch.Tensor, k: int, threshold: torch.Tensor | None = None) -> torch.Tensor:
    """A saved SAE's feature activations from its pre-activations: the top ``k`` through a ReLU
    (TopK), or those above ``threshold`` (a BatchTopK SAE, saved as JumpReLU)."""
    if threshold is not None:
        return torch.where(pre > threshold, pre.relu(), 0)
    v, i = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, i, v.relu())


class Autoencoder(nn.Module):
    """The SAE being trained (inputs already scaled)."""

    def __init__(self, d_in: int, d_sae: int, k: int, batch: bool, gen: torch.Generator):
        super().__init__()
        w = torch.randn(d_sae, d_in, generator=gen)
        w = w / w.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w)
        self.W_enc = nn.Parameter(w.T.clone())
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.k, self.batch = k, batch
        self.register_buffer("threshold", torch.zeros((), dtype=torch.float64))

    def pre(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """Training's activation: per-token TopK, or BatchTopK over the batch."""
        if not self.batch:
            return inference_acts(pre, self.k)
        acts = pre.relu().flatten()
        v, i = acts.topk(min(self.k * pre.shape[0], acts.numel()))
        return torch.zeros_like(acts).scatter(-1, i, v).reshape(pre.shape)

    @torch.no_grad()
    def unit_decoder(self) -> None:
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))


def _order(n: int, seed: int, epoch: int, buffer: int) -> list[np.ndarray]:
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return [perm[i : i + buffer] for i in range(0, n, buffer)]


def _scale(source: TokenSource, first: np.ndarray) -> tuple[float, np.ndarray]:
    """The input scale (mean squared norm to d_in) and the scaled mean, from the first buffer."""
    x = np.concatenate([source.read(int(i)) for i in first]).astype(np.float64)
    s = math.sqrt(source.d_in / max(float((x**2).sum(1).mean()), 1e-12))
    return s, (x.mean(0) * s).astype(np.float32)


def train_sae(source: TokenSource, out: str | Path, options: SAEOptions | None = None, progress: bool = True) -> SAE:
    """Train an SAE on ``source`` and save it in ``out`` (SAELens's format, ``store.saes``); a
    checkpoint in ``out`` from a stopped run with the same options and samples is resumed."""
    from tqdm.auto import tqdm

    options = options or SAEOptions()
    out = Path(out)
    dev = torch.device(options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    gen = torch.Generator().manual_seed(options.seed)
    d_sae = options.expansion * source.d_in
    k = min(options.k, d_sae)
    model = Autoencoder(source.d_in, d_sae, k, options.architecture == "batchtopk", gen).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=options.lr)
    since = torch.zeros(d_sae, dtype=torch.long, device=dev)
    key = json.dumps({"options": asdict(options), "source": source.about}, sort_keys=True, default=str)
    state = _resume(out, key, model, opt, since)
    if state is None:
        scale, mean = _scale(source, _order(source.n, options.seed, 0, options.buffer)[0])
        with torch.no_grad():
            model.b_dec.copy_(torch.from_numpy(mean))
        state = {"epoch": 0, "buffer": 0, "step": 0, "scale": scale}
    buffers = math.ceil(source.n / options.buffer)
    bar = tqdm(total=options.epochs * buffers, initial=state["epoch"] * buffers + state["buffer"], desc=f"sae {out.name}",
               unit="buffer", disable=not progress)  # fmt: skip
    while state["epoch"] < options.epochs:
        chunk = _order(source.n, options.seed, state["epoch"], options.buffer)[state["buffer"]]
        x = np.concatenate([source.read(int(i)) for i in chunk])
        x = x[np.random.default_rng([options.seed, state["epoch"], state["buffer"]]).permutation(len(x))]
        xs = torch.from_numpy(x).to(dev) * state["scale"]
        for lo in range(0, len(xs), options.batch_size):
            ev, l0 = _step(model, opt, since, xs[lo : lo + options.batch_size], options)
            state["step"] += 1
        bar.set_postfix(ev=f"{ev:.3f}", l0=f"{l0:.1f}", dead=int((since > options.dead_after).sum()))
        state["buffer"] += 1
        if state["buffer"] == buffers:
            state["epoch"], state["buffer"] = state["epoch"] + 1, 0
        _checkpoint(out, key, state, model, opt, since)
        bar.update(1)
    bar.close()
    metrics, freq = _evaluate(model, source, state["scale"], options, dev)
    sae = _folded(model, state["scale"], options, k, source, metrics)
    save_sae(out, sae, np.log10(freq + 1e-10))
    (out / CHECKPOINT).unlink(missing_ok=True)
    return sae


def _step(model: Autoencoder, opt, since: torch.Tensor, x: torch.Tensor, options: SAEOptions) -> tuple[float, float]:
    """One Adam step on a batch; returns its explained variance and mean L0."""
    pre = model.pre(x)
    z = model.activate(pre)
    err = x - (z @ model.W_dec + model.b_dec)
    mse = err.pow(2).sum(-1).mean()
    loss = mse
    dead = since > options.dead_after
    if dead.any():
        aux_pre = pre.masked_fill(~dead, float("-inf"))
        v, i = aux_pre.topk(min(options.aux_k, int(dead.sum())), dim=-1)
        aux = torch.zeros_like(pre).scatter(-1, i, v.relu()) @ model.W_dec
        loss = loss + (err.detach() - aux).pow(2).sum(-1).mean() / 32
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    model.unit_decoder()
    with torch.no_grad():
        fired = (z > 0).any(0)
        since.add_(x.shape[0]).masked_fill_(fired, 0)
        if model.batch and (z > 0).any():
            low = z[z > 0].min().double()
            model.threshold.copy_(low if model.threshold == 0 else 0.99 * model.threshold + 0.01 * low)
        var = (x - x.mean(0)).pow(2).sum(-1).mean()
        return float(1 - mse / var.clamp_min(1e-12)), float((z > 0).sum(-1).float().mean())


@torch.no_grad()
def _evaluate(model: Autoencoder, source: TokenSource, scale: float, options: SAEOptions, dev) -> tuple[dict, np.ndarray]:
    """Explained variance, L0 and dead features over every sample, as the saved SAE encodes them
    (BatchTopK: its threshold); and each feature's firing frequency."""
    fired = torch.zeros(model.W_enc.shape[1], dtype=torch.float64, device=dev)
    sse = l0 = 0.0
    tokens, total, total_sq = 0, torch.zeros(source.d_in, dtype=torch.float64), 0.0
    for i in range(source.n):
        x = torch.from_numpy(source.read(i)).to(dev) * scale
        z = inference_acts(model.pre(x), model.k, model.threshold if model.batch else None)
        sse += float((x - (z @ model.W_dec + model.b_dec)).pow(2).sum())
        total += x.double().sum(0).cpu()
        total_sq += float(x.double().pow(2).sum())
        l0 += float((z > 0).sum())
        fired += (z > 0).sum(0).double()
        tokens += x.shape[0]
    ssq = total_sq - float(total.pow(2).sum()) / tokens
    freq = (fired / tokens).cpu().numpy()
    metrics = {"explained_variance": 1 - sse / max(ssq, 1e-12), "l0": l0 / tokens, "dead_features": int((freq == 0).sum()),
               "tokens": tokens}  # fmt: skip
    return metrics, freq


def _folded(model: Autoencoder, scale: float, options: SAEOptions, k: int, source: TokenSource, metrics: dict) -> SAE:
    """The SAE on raw inputs: the input scale folded into the weights (module docstring)."""
    g = {n: p.detach().double().cpu().numpy() for n, p in model.named_parameters()}
    arch = "jumprelu" if model.batch else "topk"
    threshold = None
    if model.batch:
        threshold = np.full(g["b_enc"].shape, float(model.threshold), np.float32)
    info = {"trained": asdict(options), "source": source.about, "input_scale": scale, "metrics": metrics}
    return SAE((g["W_enc"] * scale).astype(np.float32), g["b_enc"].astype(np.float32), (g["W_dec"] / scale).astype(np.float32),
               (g["b_dec"] / scale).astype(np.float32), arch, k, threshold, str(source.about.get("site", "")),
               str(source.about.get("model", "")), info)  # fmt: skip


def _checkpoint(out: Path, key: str, state: dict, model: Autoencoder, opt, since: torch.Tensor) -> None:
    """Everything a resumed run needs, written atomically."""
    from safetensors.torch import save

    tensors = {f"model.{n}": t.detach().cpu().contiguous() for n, t in model.state_dict().items()}
    for j, p in enumerate(opt.param_groups[0]["params"]):
        for name, t in opt.state[p].items():
            tensors[f"adam.{j}.{name}"] = t.detach().cpu().contiguous()
    tensors["since"] = since.cpu()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (CHECKPOINT + ".tmp")
    tmp.write_bytes(save(tensors, metadata={"key": key, "state": json.dumps(state)}))
    tmp.replace(out / CHECKPOINT)


def _resume(out: Path, key: str, model: Autoencoder, opt, since: torch.Tensor) -> dict | None:
    """Load a checkpoint made with the same options and samples; None if there is none."""
    from safetensors import safe_open

    path = out / CHECKPOINT
    if not path.exists():
        return None
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        if meta.get("key") != key:
            raise ValueError(
                f"{path} is a checkpoint of another training (other options or samples): delete it, or train into another --out"
            )
        tensors = {n: f.get_tensor(n) for n in f.keys()}
    model.load_state_dict({n.removeprefix("model."): t for n, t in tensors.items() if n.startswith("model.")})
    dev = model.W_dec.device
    for j, p in enumerate(opt.param_groups[0]["params"]):
        held = {n.split(".")[2]: t for n, t in tensors.items() if n.startswith(f"adam.{j}.")}
        opt.state[p] = {n: t if n == "step" else t.to(dev) for n, t in held.items()}  # Adam keeps its step on the CPU
    since.copy_(tensors["since"].to(dev))
    return json.loads(meta["state"])
