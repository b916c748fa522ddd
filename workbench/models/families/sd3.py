"""Stable Diffusion 3 / 3.5: an MMDiT of joint blocks, each with an FFN on the image tokens
(``ff``) and one on the text tokens (``ff_context``; the last block's text stream is pre-only and
has none). Two CLIP encoders and T5; classifier-free guidance (batch [uncond, cond]); flow matching.

Erasers' groups as FLUX's (models/families/flux.py): the text stream's attention projections stand
in for ESD-x's cross-attention, ``add_k_proj`` / ``add_v_proj`` for AC's key/value pair.
"""

from __future__ import annotations

from . import ModelFamily, SiteSpec, transformer_class_is
from .flux import JOINT_GROUPS, T5_SITE


def encode(pipe, texts: list[str]):
    """The joint context (both CLIPs' token states, then T5's: the slots live in T5) and the CLIPs'
    pooled embedding, which sees the placeholder word itself."""
    context, _, pooled, _ = pipe.encode_prompt(texts, texts, texts, do_classifier_free_guidance=False, **call(pipe))
    return context, {"pooled_projections": pooled}


def call(pipe) -> dict:
    """T5's text length: the pipeline's 256, or the T5 tokenizer's own length where it is shorter."""
    return {"max_sequence_length": min(256, int(pipe.tokenizer_3.model_max_length))}


SPEC = ModelFamily(
    name="sd3",
    help="Stable Diffusion 3 / 3.5 MMDiTs (joint blocks, classifier-free guidance, flow matching)",
    detect=transformer_class_is("SD3Transformer2DModel"),
    denoiser="transformer",
    text_encoders=("text_encoder", "text_encoder_2", "text_encoder_3"),
    sites={
        "mlp": SiteSpec("denoiser", "transformer_blocks.*.ff.net.2", help="joint block FFN down projection, image tokens"),
        "mlp.text": SiteSpec(
            "denoiser", "transformer_blocks.*.ff_context.net.2", help="joint block FFN down projection, text tokens"
        ),
        "text.fc2": SiteSpec("text", "*.mlp.fc2", help="the CLIP encoders' MLP down projections"),
        "text.t5": T5_SITE,
    },
    groups=JOINT_GROUPS,
    default_site="mlp",
    defaults={"guidance": 7.0, "steps": 28},
    flow=True,
    text_projections=None,
    call=call,
    slots=("text_encoder_3", "tokenizer_3"),
    encode=encode,
    order=20,
)
