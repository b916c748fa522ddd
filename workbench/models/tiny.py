"""Offline builders: tiny random SD1.5- and SDXL-shaped pipelines (tests) and a full-size SD1.5
UNet with random weights (benchmarks: same compute as the real one)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from .toyworld.tokenizer import build_files


def _tokenizer(max_length: int = 16) -> CLIPTokenizer:
    folder = Path(tempfile.mkdtemp(prefix="wb-tok-"))
    return CLIPTokenizer.from_pretrained(build_files(folder, max_length))


def _text_config(vocab: int, hidden: int = 32, proj: int = 32) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=16, bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1, projection_dim=proj,
        hidden_act="gelu",
    )  # fmt: skip


def _vae(levels: int = 2) -> AutoencoderKL:
    """A tiny VAE; ``levels`` sets the downsampling (2 ** (levels - 1)): 4 levels give SD's factor 8."""
    return AutoencoderKL(
        block_out_channels=(16,) * levels, in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=16,
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
    )  # fmt: skip


def tiny_sd15(seed: int = 0) -> StableDiffusionPipeline:
    """SD1.5's block structure (3 cross-attention levels + a plain one) at widths 32/64, PNDM."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 32, 64, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=16,
    )  # fmt: skip
    tok = _tokenizer()
    text = CLIPTextModel(_text_config(len(tok)))
    sched = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1)
    pipe = StableDiffusionPipeline(
        vae=_vae(), text_encoder=text, tokenizer=tok, unet=unet, scheduler=sched, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_sdxl(seed: int = 0) -> StableDiffusionXLPipeline:
    """SDXL's structure (two text encoders, text_time conditioning, 2-layer transformer stacks)."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80, cross_attention_dim=64, norm_num_groups=16,
    )  # fmt: skip
    tok = _tokenizer()
    text = CLIPTextModel(_text_config(len(tok)))
    text2 = CLIPTextModelWithProjection(_text_config(len(tok)))
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1)
    pipe = StableDiffusionXLPipeline(
        vae=_vae(), text_encoder=text, text_encoder_2=text2, tokenizer=tok, tokenizer_2=tok, unet=unet, scheduler=sched,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sd15_unet_random(seed: int = 0, dtype: torch.dtype = torch.float32) -> UNet2DConditionModel:
    """A full-size SD1.5 UNet (860 M parameters) with random weights, for benchmarks."""
    torch.manual_seed(seed)
    return UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8).to(dtype)


def sd15_random(seed: int = 0, dtype: torch.dtype = torch.float32) -> StableDiffusionPipeline:
    """A pipeline with the full-size SD1.5 UNet and the tiny text encoder and VAE (the UNet is
    where the compute and the hooked sites are; pass output_type='latent' to skip the VAE)."""
    small = tiny_sd15(seed)
    unet = sd15_unet_random(seed, dtype)
    text = CLIPTextModel(_text_config(len(small.tokenizer), hidden=768, proj=768)).to(dtype)
    pipe = StableDiffusionPipeline(
        vae=_vae(levels=4).to(dtype), text_encoder=text, tokenizer=small.tokenizer, unet=unet, scheduler=small.scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe
