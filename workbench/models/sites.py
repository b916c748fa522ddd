"""The site catalogue: hookable layers named by module path, selected by family, glob or callable.

A *site* is the input of one ``nn.Linear`` in the denoiser (a UNet or a diffusion transformer) or a
text encoder: its neurons are the Linear's input columns. Names are plain module paths
(``down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2``); text-encoder sites carry their
component first (``text_encoder.text_model.encoder.layers.0.mlp.fc2``). Where a Linear's input holds
more than neurons (FLUX's single-stream ``proj_out``), a site is a column slice of it, and where it
sees [text, image] tokens together, one population of them; its name then ends in ``:image`` or
``:text``. Nothing here knows a particular model: the model families (``models.families``) give
the patterns.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads with the model, not with the store that names sites
    from torch import nn

from .families import MODEL_FAMILIES, SiteSpec, denoiser_of, family_of
from .hooks import Hook

#: the site families of every registered model family (name -> its SiteSpec, the first family's
#: where two share a name); a pipeline's own are its family's (``family_of(pipe).sites``)
FAMILIES: dict[str, SiteSpec] = {}
for _spec in MODEL_FAMILIES.specs():
    for _n, _v in _spec.sites.items():
        FAMILIES.setdefault(_n, _v)
TEXT_COMPONENTS = tuple(dict.fromkeys(c for spec in MODEL_FAMILIES.specs() for c in spec.text_encoders))
#: the default site families, used when a pipeline's own cannot be asked (the UNets')
DEFAULT = "ffn2"


@dataclass(frozen=True)
class Site:
    """One hookable Linear: its name, family, owning component and input width (neurons).
    ``cols``: the input columns [start, stop) that are its neurons (None: all); ``tokens``:
    'image' or 'text' where the Linear sees both populations (None: all its tokens); ``output``:
    a block's output (its residual stream), read by a forward hook, not a Linear's input."""

    name: str
    family: str
    component: str
    path: str
    width: int
    cols: tuple[int, int] | None = None
    tokens: str | None = None
    output: bool = False

    @property
    def is_text(self) -> bool:
        return self.component in TEXT_COMPONENTS

    def info(self) -> dict:
        """What a store keeps about the site (``site_info``)."""
        out = {"family": self.family, "component": self.component, "width": self.width, "path": self.path}
        if self.cols is not None:
            out["cols"] = list(self.cols)
        if self.tokens is not None:
            out["tokens"] = self.tokens
        if self.output:
            out["output"] = True
        return out


def _components(pipe) -> dict[str, nn.Module]:
    """The denoiser and text encoders of the pipeline's model family, as they are present."""
    from torch import nn

    family = family_of(pipe)
    out = {}
    for name in (family.denoiser, *family.text_encoders):
        mod = getattr(pipe, name, None)
        if isinstance(mod, nn.Module):
            out[name] = mod
    return out


def catalogue(pipe) -> list[Site]:
    """Every site of every site family of this pipeline's model family, in module order."""
    from torch import nn

    family = family_of(pipe)
    sites = []
    for comp, module in _components(pipe).items():
        for path, m in module.named_modules():
            head, _, tail = path.rpartition(".")
            for fam, spec in family.sites.items():
                if (spec.kind == "text") != (comp in family.text_encoders):
                    continue
                if spec.output and tail.isdigit() and fnmatch.fnmatchcase(head, spec.glob):
                    sites.append(Site(path, fam, comp, path, _output_width(m, path), output=True))
                elif not spec.output and isinstance(m, nn.Linear) and fnmatch.fnmatchcase(path, spec.glob):
                    sites.append(_site(comp, family.denoiser, path, m, fam, spec))
    return sites


def _output_width(block: nn.Module, path: str) -> int:
    """The width of a transformer block's output: its FFN's output width."""
    ff = getattr(block, "ff", None)
    last = getattr(ff, "net", [None])[-1] if ff is not None else None
    if last is None or not hasattr(last, "out_features"):
        raise ValueError(f"{path}: an output site needs a block with an FFN (``ff.net``) to know its width")
    return int(last.out_features)


def _site(comp: str, denoiser: str, path: str, m: nn.Linear, fam: str, spec: SiteSpec) -> Site:
    """The Site a SiteSpec makes of one Linear."""
    name = path if comp == denoiser else f"{comp}.{path}"
    cols = None
    if spec.columns == "tail":
        cols = (m.out_features, m.in_features)
    elif spec.columns is not None:
        raise ValueError(f"site family {fam!r}: unknown columns {spec.columns!r} (None or 'tail')")
    if spec.tokens is not None:
        if spec.tokens not in ("image", "text"):
            raise ValueError(f"site family {fam!r}: unknown tokens {spec.tokens!r} (None, 'image' or 'text')")
        name = f"{name}:{spec.tokens}"
    width = m.in_features if cols is None else cols[1] - cols[0]
    return Site(name, fam, comp, path, width, cols, spec.tokens)


def default_sites(pipe) -> str | tuple[str, ...]:
    """The site families the paper's method uses on this pipeline (its family's ``default_site``)."""
    return family_of(pipe).default_site


def neuron_input(site: Site, x, text_tokens: int | None = None):
    """The site's neurons' part of its Linear's input x: (rows, tokens, width)."""
    if x.dim() == 2:
        x = x[:, None]
    if site.cols is not None:
        x = x[..., site.cols[0] : site.cols[1]]
    if site.tokens is not None:
        if text_tokens is None:
            raise RuntimeError(f"{site.name}: the text-token count of its block was not seen (hook it with site_hooks)")
        x = x[:, text_tokens:] if site.tokens == "image" else x[:, :text_tokens]
    return x


def site_hooks(pipe, sites: list[Site], fn) -> list[Hook]:
    """Forward pre-hooks calling ``fn(site, x)`` with each site's neurons' input (``neuron_input``);
    a site that splits tokens gets the text-token count from its block's ``encoder_hidden_states``."""
    seen: dict[str, int] = {}
    spec: list[Hook] = []
    blocks = {s.path.rpartition(".")[0] for s in sites if s.tokens is not None}
    for block in sorted(blocks):

        def count(module, args, kwargs, block=block):  # the block's (hidden_states, encoder_hidden_states, ...)
            seen[block] = (kwargs["encoder_hidden_states"] if "encoder_hidden_states" in kwargs else args[1]).shape[1]

        owner = next(s.component for s in sites if s.path.rpartition(".")[0] == block)
        spec.append(Hook(getattr(pipe, owner).get_submodule(block), count, pre=True, with_kwargs=True))

    def make(site: Site):
        block = site.path.rpartition(".")[0]

        def hook(module, args):
            fn(site, neuron_input(site, args[0], seen.get(block)))

        return hook

    def output(site: Site):
        def hook(module, args, out):
            x = out[0] if isinstance(out, tuple) else out
            fn(site, x if x.dim() == 3 else x[:, None])

        return hook

    return spec + [
        Hook(module_of(pipe, s), output(s)) if s.output else Hook(module_of(pipe, s), make(s), pre=True) for s in sites
    ]


SiteFilter = str | Iterable[str] | Callable[[str], bool] | None


def select(pipe, sites: SiteFilter = DEFAULT) -> list[Site]:
    """Sites chosen by a family name ('ffn2'), a glob over names ('up_blocks.*ff.net.2'), a list of
    either, or a callable on names (like TransformerLens's names_filter); None means the default."""
    every = catalogue(pipe)
    if sites is None:
        sites = default_sites(pipe)
    if callable(sites):
        chosen = [s for s in every if sites(s.name)]
    else:
        patterns = [sites] if isinstance(sites, str) else list(sites)
        chosen = []
        for pat in patterns:
            hit = [s for s in every if s.family == pat or fnmatch.fnmatchcase(s.name, pat)]
            if not hit:
                examples = ", ".join(s.name for s in every[:2])
                raise ValueError(
                    f"site pattern {pat!r} matches no layer of this model: use a family "
                    f"({', '.join(family_of(pipe).sites)}), a glob over module paths (e.g. {examples}), "
                    "or `workbench sites --model ...` to list them"
                )
            chosen += [s for s in hit if s not in chosen]
        chosen.sort(key=every.index)
    if not chosen:
        raise ValueError("the site filter selected no layer: loosen it, or list the sites with `workbench sites`")
    return chosen


def recorded_dtype(provenance: dict):
    """The torch dtype a store was recorded in (its provenance's ``dtype``; float32 if unstated)."""
    import torch

    name = str(provenance.get("dtype") or "float32")
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"the store's provenance names an unknown dtype {name!r}: was it written by this workbench?")
    return dtype


def check_weights(pipe, provenance: dict, allow_other_weights: bool = False) -> bool:
    """True if the pipeline's weights hash as a store's provenance records; a mismatch raises
    (naming both hashes and the fix) unless ``allow_other_weights``, then returns False.

    The hashes are compared in the dtype the store was recorded in: a float32 model matches the
    float16 recording made from the same weights."""
    from .loading import model_hashes

    recorded = dict(provenance.get("weights_hash") or {})
    dtype = recorded_dtype(provenance)
    own = denoiser_of(pipe).dtype
    now = model_hashes(pipe, dtype=None if own == dtype else dtype)
    differ = [c for c in recorded if recorded[c] != now.get(c)]
    if differ and not allow_other_weights:
        c = differ[0]
        cast = "" if own == dtype else f", compared in the store's {str(dtype).removeprefix('torch.')}"
        raise ValueError(
            f"the store was recorded with other weights than this model's ({c}: store {str(recorded[c])[:12]}, "
            f"model {str(now.get(c))[:12]}{cast}): pass the model it was recorded with ({provenance.get('model_id')!r}), "
            "or allow_other_weights=True (--allow-other-weights) to combine them on purpose"
        )
    return not differ


def module_of(pipe, site: Site) -> nn.Module:
    """The Linear a site names (an output site: its block)."""
    return getattr(pipe, site.component).get_submodule(site.path)


def weight_of(pipe, site: Site):
    """The site's neurons' columns of its Linear's weight (out, width): a view, so writing into it
    writes the Linear (pruning a single-stream neuron touches only its MLP column)."""
    if site.output:
        raise ValueError(
            f"{site.name} is a block's output (a residual stream): it has no weight of its own, so it has no Wanda "
            "scores and cannot be pruned; choose a Linear's site (ffn2, mlp), or use it for token samples and SAEs"
        )
    w = module_of(pipe, site).weight
    return w if site.cols is None else w[:, site.cols[0] : site.cols[1]]


def full_mask(site: Site, mask, shape: tuple[int, int]):
    """A site's mask (out, width) placed in its whole Linear's weight (out, in_features): False
    outside the neurons' columns."""
    import torch

    m = torch.as_tensor(mask).bool()
    if site.cols is None:
        return m
    out = torch.zeros(shape, dtype=torch.bool)
    out[:, site.cols[0] : site.cols[1]] = m
    return out


def weights_of(pipe, sites, allow_other_weights: bool = False) -> dict:
    """The weight matrices (float32 numpy) of the given sites, read from a loaded pipeline.

    ``sites``: a store (its sites), a list of site names, or a list of Site. Given a store, the
    pipeline's weights must be those the store was recorded with (its weights hash): masks from
    one model's activations and another's weights are silently wrong, so a mismatch is refused
    unless ``allow_other_weights``."""
    dtype = None
    if hasattr(sites, "attrs"):
        check_weights(pipe, sites.attrs["provenance"], allow_other_weights)
        dtype = recorded_dtype(sites.attrs["provenance"])  # the weights as the recording ran them
    names = list(sites.attrs["sites"]) if hasattr(sites, "attrs") else [getattr(s, "name", s) for s in sites]
    by_name = {s.name: s for s in catalogue(pipe)}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"the model has no site {missing[0]}: was the store recorded with another model?")
    out = {}
    for n in names:
        w = weight_of(pipe, by_name[n]).detach()
        out[n] = (w if dtype is None else w.to(dtype)).float().cpu().numpy()
    return out
