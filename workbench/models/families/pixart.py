"""PixArt-Alpha / Sigma: a DiT of ``BasicTransformerBlock``s (self-attention, cross-attention to
T5, an FFN) with adaLN-single; classifier-free guidance on epsilon (a DPM solver). Its blocks are
the UNet's transformer blocks, so its sites and groups read as SD's: the FFN down projection
(``mlp``), cross-attention (``attn2``) for ESD-x and AC.
"""

from __future__ import annotations

from . import ModelFamily, SiteSpec, sd_unet, transformer_class_is
from .flux import T5_SITE


def encode(pipe, texts: list[str]):
    """T5's hidden states and their attention mask (the transformer's ``encoder_attention_mask``)."""
    context, mask, _, _ = pipe.encode_prompt(
        texts, do_classifier_free_guidance=False, max_sequence_length=min(300, int(pipe.tokenizer.model_max_length))
    )
    return context, {"encoder_attention_mask": mask}


SPEC = ModelFamily(
    name="pixart",
    help="PixArt-Alpha / Sigma DiTs (cross-attention to T5, classifier-free guidance, epsilon)",
    detect=transformer_class_is("PixArtTransformer2DModel"),
    denoiser="transformer",
    text_encoders=("text_encoder",),
    sites={
        "mlp": SiteSpec("denoiser", "transformer_blocks.*.ff.net.2", help="the FFN's down projection (image tokens)"),
        "attn2.to_k": sd_unet.SPEC.sites["attn2.to_k"],
        "attn2.to_v": sd_unet.SPEC.sites["attn2.to_v"],
        "text.t5": T5_SITE,
        "block": sd_unet.BLOCK_SITE,
    },
    groups=sd_unet.SPEC.groups,  # real cross-attention: the UNet's groups
    default_site="mlp",
    defaults={"guidance": 4.5, "steps": 20},
    call=lambda pipe: {
        "use_resolution_binning": False,
        "clean_caption": False,
        "max_sequence_length": min(300, int(pipe.tokenizer.model_max_length)),
    },
    encode=encode,
    order=30,
)
