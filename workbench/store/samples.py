"""Token samples: per-token activations kept beside a recording, the data SAEs are trained on.

The store's statistics are sums over tokens; a dictionary of features needs the vectors
themselves. ``<store>/samples`` keeps, for chosen sites and denoiser calls, a fixed number of
tokens per prompt (all of them where the site has no more), cond branch, float16::

    <store>/samples/        attrs: sites, steps, tokens (kept per site), site_tokens (a site's tokens
                            a call), widths, seed, weights_hash, model_id, guidance, n_steps,
                            n (committed rows), bytes_per_prompt
      text, set, seed, done (sample_prompt)           the prompts sampled, each done flag written last
      image (sample_prompt, y_image, x_image, rgb)     uint8, the generated image (for a judge's label)
      <site>/x (sample_prompt, sample_step, sample_token, neuron)   float16, one chunk a prompt
      <site>/token (sample_prompt, sample_step, sample_token)      int32, the token positions sampled

The positions are drawn from the group's seed and the prompt (its text and seed), the site and the
call, never from the batch, so a killed run resumes to the same bytes (``store.rows``). Size:
2 bytes per sampled token, unit and call, plus 4 per position and the image; ``bytes_per_prompt``
says it before a run starts. ``open_store`` leaves this group out; ``open_samples`` reads it.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from .core import StoreError
from .rows import PromptRows, create_prompt_arrays, reopened, store_root

GROUP = "samples"


def token_positions(seed: int, text: str, prompt_seed: int, site_index: int, step: int, tokens: int, take: int) -> np.ndarray:
    """The sorted token positions one prompt keeps at one site and call: all ``tokens`` if
    ``take`` is 0 or not below it, else ``take`` of them drawn without replacement."""
    if take == 0 or take >= tokens:
        return np.arange(tokens, dtype=np.int32)
    rng = np.random.default_rng([seed, zlib.crc32(text.encode()), int(prompt_seed) & 0xFFFFFFFF, site_index, step])
    return np.sort(rng.choice(tokens, size=take, replace=False)).astype(np.int32)


def bytes_per_prompt(widths: dict[str, int], kept: dict[str, int], steps: int, image_shape: tuple[int, ...]) -> int:
    """What one prompt's samples take before compression: float16 vectors, int32 positions, the image."""
    return int(sum(kept[s] * steps * (2 * w + 4) for s, w in widths.items()) + np.prod(image_shape))


class SampleWriter(PromptRows):
    """Creates, resumes and fills a store's samples group (its rows: ``store.rows``)."""

    @classmethod
    def open(cls, store: str | Path, widths: dict[str, int], kept: dict[str, int], steps: list[int],
             image_shape: tuple[int, int, int], about: dict, derived: dict | None = None) -> SampleWriter:  # fmt: skip
        """Create the group, or reopen one made with the same sites, tokens, steps, seed and
        weights (``about``); ``kept``: the tokens a prompt keeps per site and call; ``derived``:
        attributes that follow from those (kept, never compared)."""
        root = store_root(store)
        want = {"sites": list(widths), "widths": dict(widths), "tokens": dict(kept), "steps": [int(t) for t in steps],
                "image_shape": list(image_shape), **about}  # fmt: skip
        refuse = (f"{store}/{GROUP} holds token samples made with other {{diff}}: sample with the same settings and model to "
                  f"extend it, or delete {store}/{GROUP} to sample afresh")  # fmt: skip
        group = reopened(root, GROUP, want, refuse)
        if group is not None:
            writer = cls(group)
            writer.repair()
            return writer
        group = root.create_group(GROUP)
        create_prompt_arrays(group, "sample_prompt")
        group.create_array("image", shape=(0, *image_shape), chunks=(1, *image_shape), dtype="uint8",
                           dimension_names=["sample_prompt", "y_image", "x_image", "rgb"], fill_value=0)  # fmt: skip
        for site, width in widths.items():
            g = group.create_group(site)
            shape = (len(steps), kept[site])
            g.create_array("x", shape=(0, *shape, width), chunks=(1, *shape, width), dtype="float16",
                           dimension_names=["sample_prompt", "sample_step", "sample_token", "neuron"], fill_value=float("nan"))  # fmt: skip
            g.create_array("token", shape=(0, *shape), chunks=(1, *shape), dtype="int32",
                           dimension_names=["sample_prompt", "sample_step", "sample_token"], fill_value=-1)  # fmt: skip
        group.attrs.update({**want, **(derived or {}), "n": 0})  # last: the group is usable from here
        return cls(group)

    def data_arrays(self):
        yield self.group["image"]
        for site in self.group.attrs["sites"]:
            yield self.group[site]["x"]
            yield self.group[site]["token"]

    def write(self, row: int, image: np.ndarray, samples: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """One prompt's image and samples ({site: (x (step, token, width), positions (step, token))}); done last."""
        self.group["image"][row] = image
        for site, (x, pos) in samples.items():
            self.group[site]["x"][row] = x.astype(np.float16)
            self.group[site]["token"][row] = pos
        self.group["done"][row] = True


def open_samples(store: str | Path, allow_partial: bool = False) -> xr.DataTree:
    """The samples group as a DataTree: prompts and images at the root, each site a child with
    ``x`` (sample_prompt, sample_step, sample_token, neuron) and ``token``; lazily read."""
    path = Path(store) / GROUP
    if not (path / "zarr.json").exists():
        raise StoreError(f"{store} has no token samples: sample them with `workbench samples {store} --sites ...`")
    attrs = dict(zarr.open_group(str(path), mode="r", use_consolidated=False).attrs)
    tree = xr.open_datatree(str(path), engine="zarr", chunks={}, consolidated=False)
    tree = tree.isel(sample_prompt=slice(0, int(attrs["n"])))
    done = tree["done"].values
    if not done.all() and not allow_partial:
        raise StoreError(
            f"{path}: {int((~done).sum())} of {done.size} prompts have no samples yet (a run was stopped): run the same "
            "samples command again"
        )
    root = tree.to_dataset().set_coords(["text", "set", "seed", "done"])
    tree.dataset = root.assign_coords({c: root[c].astype(object).load() for c in ("text", "set")})
    for site in attrs["sites"]:
        tree[site].dataset = tree[site].to_dataset().assign_coords(sample_step=("sample_step", np.asarray(attrs["steps"])))
    tree.attrs.update(attrs)
    return tree
