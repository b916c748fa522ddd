"""Prompts with free token embeddings: placeholders in the text whose embeddings are swapped.

Used by the attacks (adversarial slots) and by ``record(..., slots=...)`` (recording attacked runs).

A prompt is written with K copies of a one-token placeholder word (``"q q q a red circle"``); while
``injecting`` is on, a forward hook on the text encoder's token-embedding layer replaces the
placeholder rows' embeddings, prompt by prompt, with given vectors (a soft prompt, a mix of
vocabulary embeddings, or the embeddings of real tokens). Everything else (positions, causal mask,
the pipeline's own encoding and negative prompt) is the model's own code: no forward is rewritten.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .hooks import Hook, hooks

#: one-token words tried as the placeholder, in order (the first the tokenizer keeps whole wins)
CANDIDATES = ("q", "sks", "zq", "xj")


def placeholder(pipe, prompts: list[str]) -> tuple[str, int]:
    """A word the tokenizer maps to one token that no prompt contains: (word, token id)."""
    tok = pipe.tokenizer
    for word in CANDIDATES:
        ids = tok(word, add_special_tokens=False).input_ids
        if len(ids) == 1 and not any(ids[0] in tok(p).input_ids for p in prompts):
            return word, ids[0]
    raise ValueError(f"no placeholder word among {CANDIDATES} is one token of this tokenizer and absent from the prompts")


def with_slots(prompt: str, word: str, k: int, where: str = "prefix") -> str:
    """The prompt with k placeholder slots before (``prefix``) or after (``suffix``) it."""
    slots = " ".join([word] * k)
    return f"{slots} {prompt}" if where == "prefix" else f"{prompt} {slots}"


def token_table(pipe) -> torch.Tensor:
    """The text encoder's token-embedding matrix (V, D)."""
    return pipe.text_encoder.get_input_embeddings().weight


def real_tokens(pipe) -> torch.Tensor:
    """Ids an attack may choose: every vocabulary entry but the special tokens."""
    tok = pipe.tokenizer
    special = set(tok.all_special_ids)
    return torch.tensor([i for i in range(token_table(pipe).shape[0]) if i not in special])


@dataclass
class Slots:
    """Embeddings for the placeholder slots of some prompts: ``vectors[i]`` (K, D) fills the slots
    of ``texts[i]`` (written with ``with_slots``), whatever order or batch the prompts come in."""

    token_id: int
    texts: list[str]
    vectors: torch.Tensor  # (N, K, D)


@contextlib.contextmanager
def injecting(pipe, token_id: int, vectors, texts: list[str] | None = None):
    """Inside, each encoded row that holds placeholders gets its vectors (K, D) at them.

    With ``texts``, a row gets the vectors of the text it encodes (matched by token ids), so any
    batching or order works, and a row of another text raises. Without, ``vectors`` (N, K, D) is
    used in order of the rows that hold placeholders, across calls (the pipeline encodes one call's
    prompts in order); ``vectors`` may then be a callable returning it (evaluated at each encoding,
    for training)."""
    layer = pipe.text_encoder.get_input_embeddings()
    state = {"row": 0}
    keyed = None
    if texts is not None:
        tok = pipe.tokenizer
        ids = tok(list(texts), padding="max_length", max_length=tok.model_max_length, truncation=True).input_ids
        keyed = {tuple(r): i for i, r in enumerate(ids)}

    def hook(module, args, out):
        ids = args[0]
        rows = (ids == token_id).any(dim=1).nonzero().flatten().tolist()
        if not rows:
            return out
        vec = vectors() if callable(vectors) else vectors
        out = out.clone()
        for r in rows:
            pos = (ids[r] == token_id).nonzero().flatten()
            if keyed is not None:
                key = tuple(ids[r].tolist())
                if key not in keyed:
                    raise ValueError("a prompt with placeholder slots has no embeddings: give Slots for every slotted prompt")
                v = vec[keyed[key]]
            else:
                v = vec[state["row"] % vec.shape[0]]
                state["row"] += 1
            out[r, pos] = v[: len(pos)].to(out.dtype)
        return out

    with hooks(Hook(layer, hook)):
        yield


def encode(pipe, texts: list[str]) -> torch.Tensor:
    """Text-encoder hidden states the way SD-family pipelines condition the UNet (padded to the
    tokenizer's length); placeholders are swapped when called inside ``injecting``."""
    tok = pipe.tokenizer
    ids = tok(texts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
    return pipe.text_encoder(ids.to(pipe.text_encoder.device))[0]
