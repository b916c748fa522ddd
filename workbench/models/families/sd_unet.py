"""Stable Diffusion's UNets: SD 1.x, 2.x, SDXL and the toy worlds (an SD-architecture UNet).

Sites are the inputs of Linear layers: the FFN's down projection (``ffn2``, the paper's), its
GEGLU projection (``ffn1``), the cross-attention key and value projections, and the text
encoders' MLP down projections. ESD-x trains the cross-attention (attn2), AC its key and value
matrices, ESD-u everything else.
"""

from __future__ import annotations

from . import ModelFamily, SiteSpec

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
    },
    groups={
        "esd-x": lambda name: ".attn2." in name,
        "esd-x-kv": lambda name: ".attn2.to_k." in name or ".attn2.to_v." in name,
        "esd-u": lambda name: ".attn2." not in name,
    },
    order=0,
)
