"""Configurations of the toy world's SD-architecture model and builders for untrained copies."""

from __future__ import annotations

from pathlib import Path

from diffusers import DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from .pipeline import ToyWorldPipeline
from .tokenizer import build_files

PATCH = 4
TEXT_MAX_LENGTH = 16


def unet_config(width: int = 96) -> dict:
    """SD's UNet2DConditionModel shape at toy scale: 8x8 tokens of 4x4x3 pixels, cross-attention
    transformer blocks (GEGLU FFNs) at both resolutions and in the middle."""
    return dict(
        sample_size=32 // PATCH,
        in_channels=3 * PATCH * PATCH,
        out_channels=3 * PATCH * PATCH,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(width, 2 * width),
        layers_per_block=1,
        cross_attention_dim=128,
        attention_head_dim=4,
        norm_num_groups=32,
    )


def text_config(vocab_size: int) -> CLIPTextConfig:
    """A two-layer CLIP text transformer, 128 wide."""
    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=TEXT_MAX_LENGTH,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        projection_dim=128,
    )


def scheduler() -> DDIMScheduler:
    """DDIM over a cosine schedule with v-prediction (a good fit for small pixel images)."""
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="v_prediction",
        clip_sample=True,
        set_alpha_to_one=True,
        timestep_spacing="trailing",
        rescale_betas_zero_snr=False,
    )


def build_untrained(tmp: str | Path, width: int = 96, seed: int = 0) -> ToyWorldPipeline:
    """A randomly initialised toy-world pipeline (its tokenizer files go to ``tmp``)."""
    import torch

    torch.manual_seed(seed)
    tok = CLIPTokenizer.from_pretrained(build_files(Path(tmp) / "tokenizer", TEXT_MAX_LENGTH))
    text = CLIPTextModel(text_config(len(tok)))
    unet = UNet2DConditionModel(**unet_config(width))
    return ToyWorldPipeline(unet=unet, text_encoder=text, tokenizer=tok, scheduler=scheduler(), patch_size=PATCH)


def build_language(base: ToyWorldPipeline, tmp: str | Path, seed: int = 0) -> ToyWorldPipeline:
    """The language world before its fine-tune (issue 24): ``base``'s UNet and text encoder with the
    tokenizer extended by every route's words (the original tokens keep their ids) and the text
    encoder's embeddings grown to match: the original rows as they were, a new token starting at the
    mean of the original rows plus a little noise, a new position as a copy of the last original one."""
    import copy

    import torch

    from .language import MAX_LENGTH, tokenizer_files

    torch.manual_seed(seed)
    tok = CLIPTokenizer.from_pretrained(tokenizer_files(Path(tmp) / "tokenizer"))
    old = base.text_encoder.float()
    cfg = text_config(len(tok))
    cfg.max_position_embeddings = MAX_LENGTH
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(cfg, key, getattr(old.config, key))  # the original ids, which the extension kept
    text = CLIPTextModel(cfg)
    want, have = text.state_dict(), old.state_dict()
    for key, value in have.items():
        if key not in want:
            continue
        if key.endswith("token_embedding.weight"):
            n = value.shape[0]
            want[key][:n] = value
            want[key][n:] = value.mean(0) + 0.02 * value.std() * torch.randn(want[key].shape[0] - n, value.shape[1])
        elif key.endswith("position_embedding.weight"):
            want[key][: value.shape[0]] = value
            want[key][value.shape[0] :] = value[-1]
        elif want[key].shape == value.shape:
            want[key] = value
    text.load_state_dict(want)
    unet = copy.deepcopy(base.unet).float()
    return ToyWorldPipeline(unet=unet, text_encoder=text, tokenizer=tok, scheduler=scheduler(), patch_size=PATCH)
