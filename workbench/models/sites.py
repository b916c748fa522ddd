"""The site catalogue: hookable layers named by module path, selected by family, glob or callable.

A *site* is the input of one ``nn.Linear`` in the UNet or a text encoder. Names are plain module
paths (``down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2``); text-encoder sites carry
their component first (``text_encoder.text_model.encoder.layers.0.mlp.fc2``). Nothing here knows a
particular model: families are suffix patterns over module paths.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads with the model, not with the store that names sites
    from torch import nn

from .families import MODEL_FAMILIES, family_of

#: the site families of every registered model family (name -> (component kind, glob)); a pipeline's
#: own are its family's (``family_of(pipe).sites``)
FAMILIES: dict[str, tuple[str, str]] = {n: v for spec in MODEL_FAMILIES.specs() for n, v in spec.sites.items()}
TEXT_COMPONENTS = ("text_encoder", "text_encoder_2")
DEFAULT = "ffn2"


@dataclass(frozen=True)
class Site:
    """One hookable Linear: its name, family, owning component and input width (neurons)."""

    name: str
    family: str
    component: str
    path: str
    width: int

    @property
    def is_text(self) -> bool:
        return self.component in TEXT_COMPONENTS


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
    """Every Linear of every site family of this pipeline's model family, in module order."""
    from torch import nn

    family = family_of(pipe)
    sites = []
    for comp, module in _components(pipe).items():
        for path, m in module.named_modules():
            if not isinstance(m, nn.Linear):
                continue
            for fam, (kind, pattern) in family.sites.items():
                if (kind == "text") == (comp in family.text_encoders) and fnmatch.fnmatchcase(path, pattern):
                    name = path if comp == family.denoiser else f"{comp}.{path}"
                    sites.append(Site(name, fam, comp, path, m.in_features))
    return sites


SiteFilter = str | Iterable[str] | Callable[[str], bool] | None


def select(pipe, sites: SiteFilter = DEFAULT) -> list[Site]:
    """Sites chosen by a family name ('ffn2'), a glob over names ('up_blocks.*ff.net.2'), a list of
    either, or a callable on names (like TransformerLens's names_filter); None means the default."""
    every = catalogue(pipe)
    if sites is None:
        sites = DEFAULT
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
    now = model_hashes(pipe, dtype=None if pipe.unet.dtype == dtype else dtype)
    differ = [c for c in recorded if recorded[c] != now.get(c)]
    if differ and not allow_other_weights:
        c = differ[0]
        cast = "" if pipe.unet.dtype == dtype else f", compared in the store's {str(dtype).removeprefix('torch.')}"
        raise ValueError(
            f"the store was recorded with other weights than this model's ({c}: store {str(recorded[c])[:12]}, "
            f"model {str(now.get(c))[:12]}{cast}): pass the model it was recorded with ({provenance.get('model_id')!r}), "
            "or allow_other_weights=True (--allow-other-weights) to combine them on purpose"
        )
    return not differ


def module_of(pipe, site: Site) -> nn.Linear:
    """The Linear a site names."""
    return getattr(pipe, site.component).get_submodule(site.path)


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
        w = module_of(pipe, by_name[n]).weight.detach()
        out[n] = (w if dtype is None else w.to(dtype)).float().cpu().numpy()
    return out
