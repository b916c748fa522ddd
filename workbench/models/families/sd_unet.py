"""Stable Diffusion's UNets: SD 1.x, 2.x, SDXL and the toy worlds (an SD-architecture UNet).

Sites are the inputs of Linear layers: the FFN's down projection (``ffn2``, the paper's), its
GEGLU projection (``ffn1``), the cross-attention key and value projections, and the text
encoders' MLP down projections. ESD-x trains the cross-attention (attn2), AC its key and value
matrices, ESD-u everything else.
"""

from __future__ import annotations

from . import ModelFamily, SiteSpec

#: a transformer block's output (the residual stream after it: SAeUron's site, one block inside
#: the attention module SAeUron hooks), for token samples and SAEs
BLOCK_SITE = SiteSpec("denoiser", "*transformer_blocks", output=True, help="a transformer block's output (residual stream)")


def slot_parts(pipe) -> tuple[str, str]:
    return (
        ("text_encoder_2", "tokenizer_2") if getattr(pipe, "text_encoder_2", None) is not None else ("text_encoder", "tokenizer")
    )


def encode(pipe, texts: list[str]):
    """SD 1.x / 2.x and the toy worlds: the text encoder's hidden states, padded to the tokenizer's
    length. SDXL: its pipeline's own encoding (both encoders' states side by side; the slots live in
    the second, OpenCLIP, encoder, whose pooled embedding is ``text_embeds``)."""
    if getattr(pipe, "text_encoder_2", None) is None:
        tok = pipe.tokenizer
        ids = tok(texts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
        return pipe.text_encoder(ids.to(pipe.text_encoder.device))[0], None
    dev = pipe.text_encoder_2.device
    context, _, pooled, _ = pipe.encode_prompt(texts, device=dev, num_images_per_prompt=1, do_classifier_free_guidance=False)
    return context, {"text_embeds": pooled}


SPEC = ModelFamily(
    name="sd-unet",
    help="Stable Diffusion UNets (SD 1.x, 2.x, SDXL) and the toy worlds",
    detect=lambda pipe: getattr(pipe, "unet", None) is not None,
    denoiser="unet",
    text_encoders=("text_encoder", "text_encoder_2"),
    sites={
        "ffn2": SiteSpec("denoiser", "*.ff.net.2", help="the FFN's down projection (the paper's neurons)"),
        "ffn1": SiteSpec("denoiser", "*.ff.net.0.proj", help="the FFN's GEGLU projection"),
        "attn2.to_k": SiteSpec("denoiser", "*.attn2.to_k", help="cross-attention keys"),
        "attn2.to_v": SiteSpec("denoiser", "*.attn2.to_v", help="cross-attention values"),
        "text.fc2": SiteSpec("text", "*.mlp.fc2", help="the text encoders' MLP down projections"),
        "block": BLOCK_SITE,
    },
    groups={
        "esd-x": lambda name: ".attn2." in name,
        "esd-x-kv": lambda name: ".attn2.to_k." in name or ".attn2.to_v." in name,
        "esd-u": lambda name: ".attn2." not in name,
    },
    slots=slot_parts,
    encode=encode,
    sae_site="up_blocks.1.attentions.1.transformer_blocks.0",
    order=0,
)
