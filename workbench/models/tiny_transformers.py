"""Offline builders of tiny random diffusion-transformer pipelines, made of diffusers' and
transformers' own classes: FLUX.1 (``FluxPipeline``), SD3 / SD3.5 (``StableDiffusion3Pipeline``)
and PixArt-Sigma (``PixArtSigmaPipeline``). Tests run every verb on them; the loading code reads
the folders ``save_tiny_dit`` writes exactly as it reads a real checkpoint's.

The T5 tokenizer is transformers' ``T5TokenizerFast`` (a ``tokenizers`` Unigram model) built offline
from a vocabulary of the toy world's words and a few common ones; the CLIP tokenizers are
``tiny``'s CLIP-format ones.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    PixArtSigmaPipeline,
    PixArtTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from transformers import CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel, T5TokenizerFast

from .tiny import CLIP_WORDS, clip_text_config, tiny_tokenizer
from .toyworld.grammar import vocabulary

T5_SPECIAL = ("<pad>", "</s>", "<unk>")


def t5_tokenizer(max_length: int = 32) -> T5TokenizerFast:
    """A T5 tokenizer (transformers' own Unigram one, built offline from a vocabulary): each toy-world
    and common word is one piece (``▁word``), other words fall back to letters."""
    words = list(dict.fromkeys([*vocabulary(), *CLIP_WORDS]))
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab = [(t, 0.0) for t in T5_SPECIAL] + [("▁", -2.0)] + [(f"▁{w}", -1.0) for w in words]
    vocab += [(c, -5.0) for c in letters] + [(f"▁{c}", -4.0) for c in letters]
    return T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=max_length)


def _t5(tok: T5TokenizerFast, width: int = 32) -> T5EncoderModel:
    return T5EncoderModel(T5Config(vocab_size=len(tok), d_model=width, d_ff=2 * width, d_kv=8, num_layers=2, num_heads=4,
                                   num_decoder_layers=0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                                   feed_forward_proj="gated-gelu", dropout_rate=0.0)).eval()  # fmt: skip


def tiny_vae(latent: int = 16, **extra) -> AutoencoderKL:
    """A tiny two-level VAE (factor 2) with ``latent`` channels."""
    return AutoencoderKL(block_out_channels=(16, 16), in_channels=3, out_channels=3, latent_channels=latent, norm_num_groups=16,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, **extra)  # fmt: skip


def tiny_flux(seed: int = 0, guidance_embeds: bool = True) -> FluxPipeline:
    """FLUX.1's structure: double-stream blocks (``ff``, ``ff_context``) then single-stream blocks
    (``proj_out`` over [attention, MLP]); CLIP pooled + T5 conditioning; guidance as an embedding
    (FLUX.1-dev) unless ``guidance_embeds=False`` (FLUX.1-schnell)."""
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=8,
                                         num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
                                         guidance_embeds=guidance_embeds, axes_dims_rope=(2, 2, 4))  # fmt: skip
    clip_tok = tiny_tokenizer(kind="clip")
    clip = CLIPTextModel(clip_text_config(len(clip_tok), tok=clip_tok))  # FLUX reads the pooler output
    t5_tok = t5_tokenizer()
    pipe = FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=tiny_vae(4, shift_factor=0.0, scaling_factor=1.0),
                        text_encoder=clip, tokenizer=clip_tok, text_encoder_2=_t5(t5_tok), tokenizer_2=t5_tok,
                        transformer=transformer)  # fmt: skip
    return _ready(pipe)


def tiny_sd3(seed: int = 0) -> StableDiffusion3Pipeline:
    """SD3's MMDiT: joint blocks with ``ff`` and ``ff_context`` (the last block's context is
    pre-only), two CLIP encoders and T5, classifier-free guidance, flow matching."""
    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(sample_size=8, patch_size=1, in_channels=4, num_layers=2, attention_head_dim=8,
                                        num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=32,
                                        pooled_projection_dim=64, out_channels=4)  # fmt: skip
    tok = tiny_tokenizer(kind="clip")
    clip1 = CLIPTextModelWithProjection(clip_text_config(len(tok), tok=tok))
    clip2 = CLIPTextModelWithProjection(clip_text_config(len(tok), tok=tok))
    t5_tok = t5_tokenizer()
    pipe = StableDiffusion3Pipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=tiny_vae(4, shift_factor=0.0),
                                    text_encoder=clip1, tokenizer=tok, text_encoder_2=clip2, tokenizer_2=tok,
                                    text_encoder_3=_t5(t5_tok), tokenizer_3=t5_tok, transformer=transformer)  # fmt: skip
    return _ready(pipe)


def tiny_pixart(seed: int = 0) -> PixArtSigmaPipeline:
    """PixArt-Sigma: ``BasicTransformerBlock``s (self-attention, cross-attention to T5, ``ff``),
    adaLN-single, classifier-free guidance, a DPM solver on epsilon."""
    torch.manual_seed(seed)
    transformer = PixArtTransformer2DModel(sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8, num_attention_heads=2,
                                           in_channels=4, out_channels=8, cross_attention_dim=16, caption_channels=32,
                                           norm_num_groups=16)  # fmt: skip
    t5_tok = t5_tokenizer()
    pipe = PixArtSigmaPipeline(tokenizer=t5_tok, text_encoder=_t5(t5_tok), vae=tiny_vae(4), transformer=transformer,
                               scheduler=DPMSolverMultistepScheduler())  # fmt: skip
    return _ready(pipe)


def _ready(pipe):
    """Every component in eval mode (built from configs, they start in training mode) and no bars."""
    for c in pipe.components.values():
        if isinstance(c, torch.nn.Module):
            c.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


TINY_DITS = {"flux": tiny_flux, "sd3": tiny_sd3, "pixart": tiny_pixart}


def save_tiny_dit(kind: str, folder: str | Path | None = None, seed: int = 0) -> Path:
    """A tiny random DiT pipeline (``kind``: 'flux', 'sd3' or 'pixart') saved with save_pretrained."""
    if kind not in TINY_DITS:
        raise ValueError(f"unknown tiny diffusion transformer {kind!r}: use one of {list(TINY_DITS)}")
    folder = Path(folder or tempfile.mkdtemp(prefix=f"wb-{kind}-"))
    TINY_DITS[kind](seed).save_pretrained(str(folder))
    return folder
