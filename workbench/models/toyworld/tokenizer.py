"""A CLIP-format BPE tokenizer whose vocabulary is the toy world's words.

Files are written exactly as CLIP's (vocab.json, merges.txt), so transformers' CLIPTokenizer
loads them like any Stable Diffusion tokenizer: every grammar word is one token.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from .grammar import vocabulary

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _pieces_of(word: str, pieces: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """The BPE symbols each piece of ``word`` merges into: one piece (the whole word) unless
    ``pieces`` splits it; the last piece ends the word (``</w>``)."""
    parts = pieces.get(word, (word,))
    return [list(p[:-1]) + [p[-1] + ("</w>" if i == len(parts) - 1 else "")] for i, p in enumerate(parts)]


def _merge(words: list[str], pieces: dict, tokens: list[str], merges: list[str]) -> None:
    """Append to ``tokens`` and ``merges`` what makes each word (or each of its pieces) one token."""
    for word in words:
        for symbols in _pieces_of(word, pieces):
            if len(symbols) == 1:
                if symbols[0] not in tokens:
                    tokens.append(symbols[0])
                continue
            left = symbols[0]
            for right in symbols[1:]:
                merge = f"{left} {right}"
                left = left + right
                if merge not in merges:
                    merges.append(merge)
                if left not in tokens:
                    tokens.append(left)


def build_files(folder: str | Path, max_length: int = 16, extra: list[str] | None = None,
                pieces: dict[str, tuple[str, ...]] | None = None) -> Path:  # fmt: skip
    """Write vocab.json, merges.txt and tokenizer_config.json for the toy tokenizer into folder.

    ``extra`` words (the language world's) come after the original vocabulary and its BOS/EOS, so
    every original token keeps its id (and its row of the text encoder's embedding); ``pieces``
    splits some of them into several tokens."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokens: list[str] = []
    for ch in string.ascii_lowercase:
        tokens += [ch, ch + "</w>"]
    merges: list[str] = []
    _merge([w for w in vocabulary() if len(w) > 1], {}, tokens, merges)
    tokens += [BOS, EOS]
    if extra:
        _merge(["-", *(w for w in extra if w not in vocabulary())], pieces or {}, tokens, merges)
    vocab = {t: i for i, t in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=0))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": max_length,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,
        "do_lower_case": True,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return folder
