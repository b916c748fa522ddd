"""FLUX.1 (dev, schnell): a diffusion transformer of double-stream blocks (image and text tokens
in their own weights, joint attention) then single-stream blocks (one sequence of [text, image]
tokens). Flow matching; guidance is an embedding (dev) or absent (schnell): one denoiser call per
step, so a recording has one branch, 'cond'.

Neurons: the double-stream FFN's down projections (``ff.net.2`` on image tokens, ``ff_context.net.2``
on text tokens) and the single-stream MLP: GELU(proj_mlp(x)) enters ``proj_out`` as the last
in_features - out_features input columns (the first ones are the attention output, never touched),
so its sites are that column slice, split into the image and the text tokens of the joint sequence.

Erasers' groups: ESD-x's cross-attention has no twin in joint attention; we take the text stream's
attention projections of the double-stream blocks (``add_q/k/v_proj``, ``to_add_out``: the weights
through which the prompt enters attention), AC's key/value pair as ``add_k_proj`` / ``add_v_proj``,
and ESD-u as every other weight of the transformer.
"""

from __future__ import annotations

from . import ModelFamily, SiteSpec, transformer_class_is


def call(pipe) -> dict:
    """T5's text length: the pipeline's 512, or the T5 tokenizer's own length where it is shorter."""
    return {"max_sequence_length": min(512, int(pipe.tokenizer_2.model_max_length))}


def encode(pipe, texts: list[str]):
    """T5's hidden states (the slots live in T5) and CLIP's pooled embedding of the same text: a
    placeholder word reaches CLIP as itself, so the pooled vector sees the word, never the slots."""
    context, pooled, _ = pipe.encode_prompt(texts, texts, **call(pipe))
    return context, {"pooled_projections": pooled}


TEXT_ATTN = (".attn.add_q_proj.", ".attn.add_k_proj.", ".attn.add_v_proj.", ".attn.to_add_out.")
TEXT_KV = (".attn.add_k_proj.", ".attn.add_v_proj.")
#: the erasers' parameter groups on joint attention (module docstring), FLUX's and SD3's
JOINT_GROUPS = {
    "esd-x": lambda name: any(k in name for k in TEXT_ATTN),
    "esd-x-kv": lambda name: any(k in name for k in TEXT_KV),
    "esd-u": lambda name: not any(k in name for k in TEXT_ATTN),
}
#: T5's FFN down projections, a text site of every family with a T5 encoder
T5_SITE = SiteSpec("text", "*.DenseReluDense.wo", help="T5's FFN down projections")

SPEC = ModelFamily(
    name="flux",
    help="FLUX.1 dev / schnell diffusion transformers (double- and single-stream blocks, flow matching, distilled guidance)",
    detect=transformer_class_is("FluxTransformer2DModel"),
    denoiser="transformer",
    text_encoders=("text_encoder", "text_encoder_2"),
    sites={
        "mlp": SiteSpec("denoiser", "transformer_blocks.*.ff.net.2", help="double-stream FFN down projection, image tokens"),
        "mlp.text": SiteSpec(
            "denoiser", "transformer_blocks.*.ff_context.net.2", help="double-stream FFN down projection, text tokens"
        ),
        "mlp.single": SiteSpec(
            "denoiser",
            "single_transformer_blocks.*.proj_out",
            columns="tail",
            tokens="image",
            help="single-stream MLP (proj_out's MLP columns), image tokens",
        ),
        "mlp.single.text": SiteSpec(
            "denoiser",
            "single_transformer_blocks.*.proj_out",
            columns="tail",
            tokens="text",
            help="single-stream MLP (proj_out's MLP columns), text tokens",
        ),
        "text.fc2": SiteSpec("text", "*.mlp.fc2", help="CLIP's MLP down projections"),
        "text.t5": T5_SITE,
    },
    groups=JOINT_GROUPS,
    default_site=("mlp", "mlp.single"),
    distilled=lambda pipe: True,
    defaults={"guidance": 3.5, "steps": 28},
    timestep_scale=1000.0,
    flow=True,
    text_projections=None,
    call=call,
    slots=("text_encoder_2", "tokenizer_2"),
    encode=encode,
    order=10,
)
