"""ToyWorldPipeline: Stable Diffusion's text-to-image loop in pixel space.

The UNet, text encoder, tokenizer and scheduler are diffusers'/transformers' own SD classes;
only the autoencoder is replaced by a lossless pixel_unshuffle, so each of the UNet's tokens
covers a patch x patch pixel block (as an SD latent token covers 8x8 pixels).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image


class ToyWorldPipeline(DiffusionPipeline):
    """Text-to-image with classifier-free guidance; batches are [uncond, cond] like SD's."""

    model_cpu_offload_seq = "text_encoder->unet"
    #: how this model is meant to be sampled (a saved copy names this class, so it keeps them);
    #: guidance 4 wrecks this small pixel-space model (docs/toyworld.md)
    generation_defaults = {"guidance": 1.5, "steps": 25}
    #: the erasers' settings here where they differ from the reference code's (each eraser spec's
    #: ``reference`` in editing/methods/, used on SD), keyed by the options class that holds them, so
    #: any eraser built on that class (a plugin's too) takes them: x_t sampled at the toy's own
    #: guidance 1.5 by every trained eraser (SD's reference samples at 3 for ESD and 6 for AC's anchor
    #: images, which wreck this model), the fine-tuning learning rate of the toy's working point
    #: (docs/robustness.md sweeps it), and anchors at batch 1 from a pool of 128 anchor images (8 per
    #: calibration prompt; the reference's 1000 is for one concept prompt set)
    eraser_defaults = {
        "Training": {"guidance": 1.5},
        "FineTune": {"lr": 1e-4},
        "Anchors": {"batch": 1, "pool": 128},
    }

    def __init__(self, unet, text_encoder, tokenizer, scheduler, patch_size: int = 4):
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)
        self.register_to_config(patch_size=patch_size)

    @property
    def image_size(self) -> int:
        return self.unet.config.sample_size * self.config.patch_size

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        """Text-encoder hidden states for a list of captions."""
        ids = self.tokenizer(
            prompts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids.to(self.text_encoder.device)
        return self.text_encoder(ids)[0]

    def to_pixels(self, latents: torch.Tensor) -> torch.Tensor:
        """UNet space (B, 3p^2, h, w) to images in [0, 1] (B, 3, hp, wp)."""
        return (F.pixel_shuffle(latents, self.config.patch_size).clamp(-1, 1) + 1) / 2

    def to_latents(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] to UNet space (the inverse of to_pixels)."""
        return F.pixel_unshuffle(images * 2 - 1, self.config.patch_size)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        num_inference_steps: int = 25,
        guidance_scale: float = 1.5,
        negative_prompt: str | list[str] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        height: int | None = None,
        width: int | None = None,
        return_dict: bool = True,
    ):
        if height not in (None, self.image_size) or width not in (None, self.image_size):
            raise ValueError(f"the toy world draws {self.image_size}x{self.image_size} images only")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        b = len(prompts)
        do_cfg = guidance_scale > 1.0
        cond = self.encode_prompt(prompts)
        if do_cfg:
            neg = negative_prompt if negative_prompt is not None else ""
            negs = [neg] * b if isinstance(neg, str) else list(neg)
            cond = torch.cat([self.encode_prompt(negs), cond])
        cond = cond.to(self.unet.dtype)
        c = self.unet.config.in_channels
        s = self.unet.config.sample_size
        if latents is None:
            latents = randn_tensor((b, c, s, s), generator=generator, device=self._execution_device, dtype=self.unet.dtype)
        self.scheduler.set_timesteps(num_inference_steps, device=self._execution_device)
        latents = latents * self.scheduler.init_noise_sigma
        for t in self.progress_bar(self.scheduler.timesteps):
            x = torch.cat([latents] * 2) if do_cfg else latents
            x = self.scheduler.scale_model_input(x, t)
            out = self.unet(x, t, encoder_hidden_states=cond).sample
            if do_cfg:
                u, c_ = out.chunk(2)
                out = u + guidance_scale * (c_ - u)
            latents = self.scheduler.step(out, t, latents).prev_sample
        if output_type == "latent":
            return ImagePipelineOutput(images=latents) if return_dict else (latents,)
        images = self.to_pixels(latents.float())
        if output_type == "pt":
            result = images
        else:
            arr = images.permute(0, 2, 3, 1).cpu().numpy()
            result = arr if output_type == "np" else [Image.fromarray((a * 255).round().astype(np.uint8)) for a in arr]
        return ImagePipelineOutput(images=result) if return_dict else (result,)
