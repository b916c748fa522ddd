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


def build_files(folder: str | Path, max_length: int = 16) -> Path:
    """Write vocab.json, merges.txt and tokenizer_config.json for the toy tokenizer into folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokens: list[str] = []
    for ch in string.ascii_lowercase:
        tokens += [ch, ch + "</w>"]
    merges: list[str] = []
    for word in vocabulary():
        if len(word) == 1:
            continue
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        left = parts[0]
        for right in parts[1:]:
            merge = f"{left} {right}"
            left = left + right
            if merge not in merges:
                merges.append(merge)
            if left not in tokens:
                tokens.append(left)
    tokens += [BOS, EOS]
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
