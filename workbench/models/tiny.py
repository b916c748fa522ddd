"""Offline builders: tiny random SD 1.x-, SD 2.x- and SDXL-shaped pipelines, a tiny CLIP and a
tiny image classifier (tests: the real loading code runs on them), and a full-size SD1.5 UNet with
random weights (benchmarks: same compute as the real one).

``tokenizer="clip"`` gives a CLIP tokenizer in CLIP's own format: the 512 byte-level symbols
(with and without ``</w>``), the merges of a few hundred common words, 77 positions, so prompts
split into several tokens as in Stable Diffusion; the default is the toy world's whole-word one."""

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

#: words the tiny CLIP tokenizer merges whole (the rest split into pieces and bytes)
CLIP_WORDS = (
    "a photo of the in and with on style painting by naked nude person man woman cat dog house car church parachute "
    "van gogh monet picture portrait street city tree garden beach forest room red blue green circle stripes"
).split()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's and CLIP's map from bytes to printable characters (the byte-level alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def clip_tokenizer_files(folder: str | Path, words=CLIP_WORDS, max_length: int = 77) -> Path:
    """vocab.json, merges.txt and tokenizer_config.json of a CLIP tokenizer in CLIP's format: the
    byte alphabet, each symbol also with ``</w>``, merges building ``words``, then the specials."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [c + "</w>" for c in alphabet]
    merges: list[str] = []
    for word in words:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        left = parts[0]
        for right in parts[1:]:
            merge, left = f"{left} {right}", left + right
            if merge not in merges:
                merges.append(merge)
                tokens.append(left)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(dict.fromkeys(tokens))}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "bos_token": "<|startoftext|>",
              "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "do_lower_case": True}  # fmt: skip
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return folder


def tiny_tokenizer(max_length: int = 16, kind: str = "toy") -> CLIPTokenizer:
    folder = Path(tempfile.mkdtemp(prefix="wb-tok-"))
    if kind == "clip":
        return CLIPTokenizer.from_pretrained(clip_tokenizer_files(folder))
    if kind != "toy":
        raise ValueError(f"unknown tokenizer {kind!r}: 'toy' (whole toy-world words) or 'clip' (CLIP's byte-level format)")
    return CLIPTokenizer.from_pretrained(build_files(folder, max_length))


def clip_text_config(vocab: int, hidden: int = 32, proj: int = 32, positions: int = 16, tok=None) -> CLIPTextConfig:
    bos = tok.bos_token_id if tok is not None else vocab - 2
    eos = tok.eos_token_id if tok is not None else vocab - 1
    return CLIPTextConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=max(positions, tok.model_max_length if tok is not None else positions), bos_token_id=bos,
        eos_token_id=eos, pad_token_id=eos, projection_dim=proj, hidden_act="gelu",
    )  # fmt: skip


def _vae(levels: int = 2) -> AutoencoderKL:
    """A tiny VAE; ``levels`` sets the downsampling (2 ** (levels - 1)): 4 levels give SD's factor 8."""
    return AutoencoderKL(
        block_out_channels=(16,) * levels, in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=16,
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
    )  # fmt: skip


def _sd_pipeline(unet, text, tok, sched, vae=None) -> StableDiffusionPipeline:
    """An SD 1.x/2.x pipeline of these parts (a tiny VAE unless given), without safety checker or bars."""
    pipe = StableDiffusionPipeline(
        vae=_vae() if vae is None else vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=sched, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


#: SD 1.x's and 2.x's block layout: three cross-attention levels and a plain one
SD_DOWN = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
SD_UP = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")


def tiny_sd15(seed: int = 0, tokenizer: str = "toy") -> StableDiffusionPipeline:
    """SD1.5's block structure (3 cross-attention levels + a plain one) at widths 32/64, PNDM."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 32, 64, 64),
        down_block_types=SD_DOWN, up_block_types=SD_UP,
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=16,
    )  # fmt: skip
    tok = tiny_tokenizer(kind=tokenizer)
    text = CLIPTextModel(clip_text_config(len(tok), tok=tok))
    sched = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1)
    return _sd_pipeline(unet, text, tok, sched)


def tiny_sd2(seed: int = 0, tokenizer: str = "clip") -> StableDiffusionPipeline:
    """SD 2.x's differences from 1.x: linear projections in the transformers, heads per level,
    v-prediction with an Euler scheduler, a wider text encoder."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 32, 64, 64),
        down_block_types=SD_DOWN, up_block_types=SD_UP,
        cross_attention_dim=48, attention_head_dim=(2, 4, 8, 8), use_linear_projection=True, norm_num_groups=16,
    )  # fmt: skip
    tok = tiny_tokenizer(kind=tokenizer)
    text = CLIPTextModel(clip_text_config(len(tok), hidden=48, proj=48, tok=tok))
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                                   prediction_type="v_prediction")  # fmt: skip
    return _sd_pipeline(unet, text, tok, sched)


def tiny_sdxl(seed: int = 0, tokenizer: str = "toy") -> StableDiffusionXLPipeline:
    """SDXL's structure (two text encoders, text_time conditioning, 2-layer transformer stacks)."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80, cross_attention_dim=64, norm_num_groups=16,
    )  # fmt: skip
    tok = tiny_tokenizer(kind=tokenizer)
    text = CLIPTextModel(clip_text_config(len(tok), tok=tok))
    text2 = CLIPTextModelWithProjection(clip_text_config(len(tok), tok=tok))
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


def sd15_random(seed: int = 0, dtype: torch.dtype = torch.float32, tokenizer: str = "toy") -> StableDiffusionPipeline:
    """A pipeline with the full-size SD1.5 UNet and the tiny text encoder and VAE (the UNet is
    where the compute and the hooked sites are; pass output_type='latent' to skip the VAE).
    ``tokenizer='clip'`` gives SD's 77 text positions (the cross-attention's cost) instead of 16."""
    small = tiny_sd15(seed, tokenizer=tokenizer)
    unet = sd15_unet_random(seed, dtype)
    text = CLIPTextModel(clip_text_config(len(small.tokenizer), hidden=768, proj=768, tok=small.tokenizer)).to(dtype)
    return _sd_pipeline(unet, text, small.tokenizer, small.scheduler, vae=_vae(levels=4).to(dtype))


def save_tiny(kind: str, folder: str | Path, seed: int = 0, tokenizer: str = "clip") -> Path:
    """A tiny random pipeline saved with save_pretrained: ``kind`` 'sd1', 'sd2' or 'sdxl'."""
    makers = {"sd1": tiny_sd15, "sd2": tiny_sd2, "sdxl": tiny_sdxl}
    if kind not in makers:
        raise ValueError(f"unknown tiny model {kind!r}: use one of {list(makers)}")
    makers[kind](seed, tokenizer=tokenizer).save_pretrained(str(folder))
    return Path(folder)


def save_tiny_clip(folder: str | Path, seed: int = 0) -> Path:
    """A tiny random CLIP (text and vision towers, 32-px images) with its processor, saved where
    ``clip:FOLDER`` and ``ClipScorer(FOLDER)`` load it."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(seed)
    tok = tiny_tokenizer(kind="clip")
    text = clip_text_config(len(tok), tok=tok).to_dict()
    vision = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "projection_dim": 32}  # fmt: skip
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=32))
    proc = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                         tokenizer=tok)  # fmt: skip
    model.save_pretrained(str(folder))
    proc.save_pretrained(str(folder))
    return Path(folder)


def save_tiny_classifier(folder: str | Path, labels=("church", "parachute", "tench"), seed: int = 0) -> Path:
    """A tiny random ResNet image classifier over ``labels`` with its processor, saved where
    ``classifier:FOLDER`` and ``Classifier(FOLDER)`` load it."""
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=len(labels),
                          id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)})  # fmt: skip
    ResNetForImageClassification(config).save_pretrained(str(folder))
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(str(folder))
    return Path(folder)
