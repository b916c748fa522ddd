"""Feature ablation at inference (SAeUron, Cywinski & Deja 2025): at a site, encode the
activations with an SAE, scale the concept's features, decode, and add the SAE's error back, so
only those features change:

    x' = x + sum_f [z_f > above_f] (scale - 1) z_f W_dec[f]

on every token (both guidance branches) where the feature fires above ``above_f`` (SAeUron's:
its mean activation over all calibration prompts). Features are chosen per window of denoiser
calls; a call's window is read from its timestep (``bounds``: each window's [low, high]
scheduler timesteps), so it holds for any number of generations. The edit's arrays (in
``features.safetensors``): ``<site>/W_enc, b_enc, W_dec, b_dec[, threshold], k, features
(window, n), above (window, n), bounds (window, 2)``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..models.families import denoiser_of, family_of
from ..models.hooks import DenoiserCall, Hook, hooks, live_edit
from ..models.sites import Site, catalogue, module_of
from ..recording.sae import inference_acts
from ..store.saes import SAE
from ..store.shards import waiting_lock

KEYS = ("W_enc", "b_enc", "W_dec", "b_dec", "k", "features", "above", "bounds")


def feature_arrays(site: str, sae: SAE, features: np.ndarray, above: np.ndarray, bounds: np.ndarray) -> dict[str, np.ndarray]:
    """The edit's arrays of one site (module docstring)."""
    out = {"W_enc": sae.W_enc, "b_enc": sae.b_enc, "W_dec": sae.W_dec, "b_dec": sae.b_dec, "k": np.array([sae.k]),
           "features": np.asarray(features, np.int64), "above": np.asarray(above, np.float32), "bounds": np.asarray(bounds, np.float64)}  # fmt: skip
    if sae.architecture == "jumprelu":
        out["threshold"] = sae.threshold
    return {f"{site}/{k}": np.ascontiguousarray(v) for k, v in out.items()}


def sites_of(arrays: dict[str, np.ndarray]) -> list[str]:
    return list(dict.fromkeys(k.rpartition("/")[0] for k in arrays))


class _Ablation:
    """One site's SAE and chosen features, on the site's device."""

    def __init__(self, arrays: dict[str, np.ndarray], site: str, scale: float, device):
        def t(name, dtype=torch.float32):
            return torch.as_tensor(arrays[f"{site}/{name}"]).to(device, dtype)

        self.W_enc, self.b_enc, self.W_dec, self.b_dec = t("W_enc"), t("b_enc"), t("W_dec"), t("b_dec")
        self.threshold = t("threshold") if f"{site}/threshold" in arrays else None
        self.k = int(arrays[f"{site}/k"][0])
        self.features, self.above = t("features", torch.long), t("above")
        self.bounds = np.asarray(arrays[f"{site}/bounds"])
        self.scale = scale

    def window(self, t: float) -> int | None:
        hit = [w for w, (lo, hi) in enumerate(self.bounds) if lo <= t <= hi]
        return hit[0] if hit else None

    def __call__(self, x: torch.Tensor, w: int) -> torch.Tensor:
        h = x.float()
        z = inference_acts((h - self.b_dec) @ self.W_enc + self.b_enc, self.k, self.threshold)
        f = self.features[w]
        zf = z[..., f]
        delta = torch.where(zf > self.above[w], (self.scale - 1) * zf, 0) @ self.W_dec[f]
        return (h + delta).to(x.dtype)


def _site(pipe, name: str) -> Site:
    found = {s.name: s for s in catalogue(pipe)}
    if name not in found:
        raise ValueError(f"the feature edit's site {name} is not a site of this model: was it made for another model?")
    site = found[name]
    if site.cols is not None or site.tokens is not None:
        raise ValueError(f"{name}: feature ablation needs a site that is a whole Linear input or a block output")
    return site


@contextlib.contextmanager
def ablating(pipe, arrays: dict[str, np.ndarray], scale: float) -> Iterator[None]:
    """``with ablating(pipe, arrays, scale): pipe(...)``: the features are scaled inside, nothing after."""
    now: dict[str, float] = {}
    tscale = family_of(pipe).timestep_scale
    digest = hashlib.sha256(repr(scale).encode())
    for k in sorted(arrays):
        digest.update(k.encode() + np.ascontiguousarray(arrays[k]).tobytes())

    def timestep(module, args, kwargs):
        now["t"] = float(torch.as_tensor(DenoiserCall.of(args, kwargs).timestep).reshape(-1)[0]) * tscale

    spec = [Hook(denoiser_of(pipe), timestep, pre=True, with_kwargs=True)]
    for name in sites_of(arrays):
        site = _site(pipe, name)
        mod = module_of(pipe, site)
        ab = _Ablation(arrays, name, scale, next(mod.parameters()).device)

        def on_output(module, args, out, ab=ab):
            w = ab.window(now["t"])
            if w is None:
                return None
            if isinstance(out, tuple):
                return (ab(out[0], w), *out[1:])
            return ab(out, w)

        def on_input(module, args, ab=ab):
            w = ab.window(now["t"])
            return None if w is None else (ab(args[0], w), *args[1:])

        spec.append(Hook(mod, on_output) if site.output else Hook(mod, on_input, pre=True))
    with hooks(*spec), live_edit(pipe, "features:" + digest.hexdigest()[:16]):
        yield


def sae_site(pipe) -> str:
    """The family's SAE site, else the middle block output."""
    family, every = family_of(pipe), catalogue(pipe)
    if family.sae_site in {s.name for s in every}:
        return family.sae_site
    blocks = [s.name for s in every if s.output]
    if not blocks:
        raise ValueError(f"a {family.name} model has no block-output site: give a site (--site)")
    return blocks[len(blocks) // 2]


def calibration_samples(pipe, site: Site, prompts, run) -> tuple[np.ndarray, list[float]]:
    """Token samples (prompt, call, token, width) of ``prompts`` at ``site``, every call, and the
    calls' timesteps; in memory, a batch of prompts at a time."""
    from ..models.loading import generation_defaults
    from ..recording.maps import generate
    from ..recording.samples import DEFAULT_TOKENS, SampleRecorder

    d = generation_defaults(pipe)
    steps = int(run.steps if run.steps is not None else d["steps"])
    guidance = float(run.guidance if run.guidance is not None else d["guidance"])
    rec = SampleRecorder(pipe, [site], range(steps), DEFAULT_TOKENS, run.seed)
    xs = []
    with torch.inference_mode():
        for lo in range(0, len(prompts), 8):
            rec.batch = prompts[lo : lo + 8]
            _, got = generate(pipe, rec, rec.batch, steps, guidance, run.size)
            xs.append(got[site.name][0])
    return np.concatenate(xs), rec.timesteps[: xs[0].shape[1]]


def windows_of(n_calls: int, windows: int) -> list[list[int]]:
    """The calls split into ``windows`` contiguous windows (as even as they divide)."""
    if windows > n_calls:
        raise ValueError(f"{windows} windows for {n_calls} denoiser calls: choose at most {n_calls}")
    return [list(w) for w in np.array_split(np.arange(n_calls), windows)]


def bounds_of(timesteps: list[float], windows: list[list[int]]) -> np.ndarray:
    """Each window's [low, high] timesteps: midway to its neighbours, open at both ends."""
    t = np.asarray(timesteps, np.float64)
    edges = [(t[a[-1]] + t[b[0]]) / 2 for a, b in zip(windows, windows[1:])]
    hi = [np.inf, *edges]
    lo = [*edges, -np.inf]
    return np.array([[min(a, b), max(a, b)] for a, b in zip(lo, hi)])


def feature_edit(pipe, concept, options, run) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of a feature-ablation edit of ``concept`` (``FeatureOptions``) and what to record
    of it: sample the concept's target and anchor prompts at the site, train an SAE there (or load
    ``options.sae``), score the features per window, keep the top ones."""
    import tempfile

    import xarray as xr

    from ..analysis.features import feature_scores, top_units
    from ..recording.sae import ArraySource, SAEOptions, train_sae
    from ..store.saes import load_sae

    name = options.site or sae_site(pipe)
    site = _site(pipe, name)
    prompts = list(concept.target) + list(concept.anchor)
    x, timesteps = calibration_samples(pipe, site, prompts, run)
    about: dict = {"site": name}
    if options.sae:
        sae = load_sae(options.sae)
        if sae.d_in != site.width:
            raise ValueError(
                f"the SAE in {options.sae} reads {sae.d_in} inputs and {name} has {site.width}: give an SAE of this site"
            )
        about["sae"] = str(options.sae)
    else:
        folder = Path(run.workdir) / "sae" if run.workdir is not None else Path(tempfile.mkdtemp(prefix="features-"))
        trained = SAEOptions(k=options.sae_k, expansion=options.sae_expansion, epochs=options.sae_epochs, batch_size=1024, buffer=len(prompts),
                             seed=run.seed)  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        with waiting_lock(folder, "training"):  # shards of a grid share the folder: one trains, the others reuse
            sae = train_sae(ArraySource(x, {"site": name, "concept": concept.name}), folder, trained, progress=run.progress)
        about["sae_metrics"] = sae.info["metrics"]
    acts = np.stack([sae.encode(p).mean(1) for p in x])  # (prompt, call, feature)
    sets = ["target"] * len(concept.target) + ["anchor"] * len(concept.anchor)
    da = xr.DataArray(
        acts, dims=("prompt", "step", "feature"), coords={"step": np.arange(acts.shape[1]), "set": ("prompt", sets)}
    )
    calls = windows_of(acts.shape[1], options.windows)
    n = min(options.features, sae.d_sae)
    chosen, above = [], []
    for w in calls:
        score = feature_scores(da.isel(step=w), "target", "anchor").mean("step")
        top = np.flatnonzero(top_units(score, n).values)
        chosen.append(top)
        above.append(acts[:, w][..., top].mean((0, 1)))
    arrays = feature_arrays(name, sae, np.stack(chosen), np.stack(above), bounds_of(timesteps, calls))
    return arrays, about
