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


def _bpe(symbols: list[str], ranks: dict[str, int]) -> list[str]:
    """What CLIP's BPE makes of one word's symbols: the lowest-ranked merge present, again and again."""
    symbols = list(symbols)
    while len(symbols) > 1:
        pairs = [(ranks.get(f"{a} {b}", 1 << 30), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
    return symbols


def _settle(words: list[str], pieces: dict, tokens: list[str], merges: list[str]) -> None:
    """Make BPE give each word its intended pieces: an earlier word's merge can win over a later word's
    ('a n' before 'b a' leaves 'banded' as 'b an d e d'); then append the merges that join what is
    left, left to right (appended merges rank last, so they change no word that was right)."""
    for _ in range(64):
        ranks = {m: i for i, m in enumerate(merges)}
        wrong = False
        for word in words:
            for symbols in _pieces_of(word, pieces):
                want, got = "".join(symbols), _bpe(symbols, ranks)
                if got != [want]:
                    wrong = True
                    merge = f"{got[0]} {got[1]}"
                    if merge not in merges:
                        merges.append(merge)
                    if got[0] + got[1] not in tokens:
                        tokens.append(got[0] + got[1])
        if not wrong:
            return
    raise RuntimeError("the tokenizer's merges do not settle: a word cannot be made one token")


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
        new = ["-", *(w for w in extra if w not in vocabulary())]
        _merge(new, pieces or {}, tokens, merges)
        _settle(new, pieces or {}, tokens, merges)
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
