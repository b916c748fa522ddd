"""Prompts with free token embeddings: placeholders in the text whose embeddings are swapped.

Used by the attacks (adversarial slots) and by ``record(..., slots=...)`` (recording attacked runs).

A prompt is written with K copies of a one-token placeholder word (``"q q q a red circle"``); while
``injecting`` is on, a forward hook on the text encoder's token-embedding layer replaces the
placeholder rows' embeddings, prompt by prompt, with given vectors (a soft prompt, a mix of
vocabulary embeddings, or the embeddings of real tokens). Everything else (positions, causal mask,
the pipeline's own encoding and negative prompt) is the model's own code: no forward is rewritten.

Which encoder holds the slots is the model family's choice (``ModelFamily.slots``): CLIP on SD 1.x /
2.x, the second (OpenCLIP) encoder on SDXL, T5 on FLUX, SD3 and PixArt; the model's other encoders
read the placeholder word as text.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .families import family_of
from .hooks import Hook, hooks

#: one-token words tried as the placeholder, in order (the first the tokenizer keeps whole wins)
CANDIDATES = ("q", "sks", "zq", "xj")


def slot_parts(pipe):
    """(text encoder, tokenizer) whose token embeddings the slots replace (the family's choice)."""
    names = family_of(pipe).slots
    enc, tok = names(pipe) if callable(names) else names
    return getattr(pipe, enc), getattr(pipe, tok)


def placeholder(pipe, prompts: list[str]) -> tuple[str, int]:
    """A word the tokenizer maps to one token that no prompt contains: (word, token id)."""
    tok = slot_parts(pipe)[1]
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
    """The slots' text encoder's token-embedding matrix (V, D)."""
    return slot_parts(pipe)[0].get_input_embeddings().weight


def real_tokens(pipe) -> torch.Tensor:
    """Ids an attack may choose: every vocabulary entry but the special tokens."""
    tok = slot_parts(pipe)[1]
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
    encoder, tok = slot_parts(pipe)
    layer = _embedding_called(encoder)
    state = {"row": 0}
    keyed = None
    if texts is not None:
        ids = tok(list(texts), truncation=True, max_length=tok.model_max_length).input_ids
        keyed = {_key(r, tok.pad_token_id): i for i, r in enumerate(ids)}

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
                key = _key(ids[r].tolist(), tok.pad_token_id)
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


def _embedding_called(encoder) -> torch.nn.Module:
    """The token-embedding module the encoder's forward calls: the last module holding the input
    embedding's weight (T5 ties ``shared`` to ``encoder.embed_tokens`` and calls the latter)."""
    table = encoder.get_input_embeddings().weight
    return [m for m in encoder.modules() if isinstance(m, torch.nn.Embedding) and m.weight is table][-1]


def _key(ids: list[int], pad: int | None) -> tuple[int, ...]:
    """A row's token ids without trailing padding (pipelines pad to their own lengths)."""
    ids = list(ids)
    while ids and ids[-1] == pad:
        ids.pop()
    return tuple(ids)


@dataclass
class Conditioning:
    """The denoiser's text conditioning of some prompts: ``context`` (its encoder_hidden_states)
    and ``added``, the per-row inputs that go with it (a pooled embedding, an attention mask)."""

    context: torch.Tensor
    added: dict | None = None

    def take(self, idx) -> Conditioning:
        return Conditioning(self.context[idx], {k: v[idx] for k, v in self.added.items()} if self.added else None)


def encode(pipe, texts: list[str]) -> Conditioning:
    """The denoiser's conditioning of ``texts`` as the model's pipeline computes it (the family's
    ``encode``), differentiable; placeholders are swapped when called inside ``injecting``."""
    family = family_of(pipe)
    if family.encode is None:
        raise ValueError(f"the {family.name} model family states no text encoding: prompt attacks need one (ModelFamily.encode)")
    context, added = family.encode(pipe, list(texts))
    return Conditioning(context, added)
