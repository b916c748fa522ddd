"""The language world's captions (issue 24): routes to each texture and shape, split between what
erasers may see and what only attacks and evaluation use, and a tokenizer that round-trips them."""

import json

import pytest
from transformers import CLIPTokenizer

from workbench.models.toyworld import SHAPES, TEXTURES, Spec
from workbench.models.toyworld import language as L
from workbench.models.toyworld.tokenizer import build_files


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    return CLIPTokenizer.from_pretrained(build_files(root / "old")), CLIPTokenizer.from_pretrained(
        L.tokenizer_files(root / "lang")
    )


def every_caption():
    for shape in SHAPES:
        for texture in TEXTURES:
            for rs in L.routes(shape):
                for rt in L.routes(texture) if texture != "plain" else [None]:
                    yield shape, texture, L.caption(Spec(shape, "yellow", texture, "night"), rt, rs)


def test_every_route_round_trips_through_the_tokenizer_and_parses_back(tokenizers):
    _, lang = tokenizers
    n = 0
    for shape, texture, text in every_caption():
        ids = lang(text).input_ids
        assert len(ids) <= L.MAX_LENGTH, text
        assert lang.decode(ids[1:-1]).replace(" - ", "-") == text  # no word lost to an unknown token
        got = L.parse(text)
        assert (got["shape"], got["texture"], got["colour"], got["scene"]) == (shape, texture, "yellow", "night"), text
        n += 1
    assert n > 300


def test_the_original_tokens_keep_their_ids_and_some_routes_take_several_tokens(tokenizers, tmp_path):
    old, lang = tokenizers
    assert len(lang) > len(old)
    for token, i in old.get_vocab().items():
        assert lang.get_vocab()[token] == i  # the text encoder's original rows keep their meaning
    assert old("a red circle with stripes on snow").input_ids == lang("a red circle with stripes on snow").input_ids[:9]
    several = [r.phrase for r in L.ROUTES if " " not in r.phrase and len(lang.tokenize(r.phrase)) > 1]
    assert {"chequered", "zebra-patterned"} <= set(several)
    # the original world's files are byte for byte what they were: the shipped tokenizer is untouched
    a, b = build_files(tmp_path / "a"), build_files(tmp_path / "b", extra=[], pieces={})
    assert json.loads((a / "vocab.json").read_text()) == json.loads((b / "vocab.json").read_text())


def test_every_concept_has_train_and_heldout_routes_of_every_kind():
    for value in (*TEXTURES[1:], *SHAPES):
        rs = L.routes(value)
        assert rs[0].kind == "original" and rs[0].split == "train"
        assert {r.split for r in rs} == {"train", "heldout"}
        assert {"synonym", "implied", "description"} <= {r.kind for r in rs if r.split == "heldout"}
    assert not {r.phrase for r in L.routes("striped", "train")} & {r.phrase for r in L.routes("striped", "heldout")}
    with pytest.raises(ValueError, match="no routes for 'purple'"):
        L.routes("purple")
    with pytest.raises(ValueError, match="draws dotted, not striped"):
        L.caption(Spec("circle", "red", "striped", "snow"), L.routes("dotted")[0])


def test_the_extended_text_encoder_reads_original_captions_as_before(toy, tmp_path):
    """Before any fine-tune the language world's text encoder gives every original caption the
    original hidden states (same token ids, same rows, causal attention over the same positions)."""
    import torch

    from workbench.models.toyworld.model import build_language

    lang = build_language(toy, tmp_path)
    texts = ["a red circle with stripes on snow", "a blue cross", "fog", ""]
    with torch.no_grad():
        ids = toy.tokenizer(texts, padding="max_length", max_length=16, return_tensors="pt").input_ids
        ids_lang = lang.tokenizer(texts, padding="max_length", max_length=L.MAX_LENGTH, return_tensors="pt").input_ids
        assert torch.equal(ids_lang[:, :16], ids)
        a = toy.text_encoder(ids)[0]
        b = lang.text_encoder(ids_lang)[0][:, :16]
    torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    assert lang.text_encoder.get_input_embeddings().num_embeddings == len(lang.tokenizer) > len(toy.tokenizer)


def test_language_training_runs_and_resumes(tmp_path, capsys):
    """Two optimiser steps of the language fine-tune on random route captions, checkpointed, then
    resumed to a third (the same script as the original world's training)."""
    from workbench.models.toyworld import train

    argv = ["--language", "--out", str(tmp_path), "--batch", "4", "--oracle-steps", "0", "--device", "cpu", "--save-every", "1"]
    train.main([*argv, "--steps", "2"])
    assert (tmp_path / "checkpoint" / "state.pt").exists()
    train.main([*argv, "--steps", "3"])
    assert "resumed at step 2" in capsys.readouterr().out


def test_language_batches_name_every_route(tmp_path):
    """Captions drawn for training use every route of every texture and shape, the original phrase
    about half of the time."""
    import torch
    from transformers import CLIPTokenizer

    from workbench.models.toyworld.train import language_batch, language_table

    tok = CLIPTokenizer.from_pretrained(L.tokenizer_files(tmp_path))
    tables = language_table(tok, "cpu")
    _, ids = language_batch(4096, tables, torch.Generator().manual_seed(0), "cpu")
    texts = tok.batch_decode(ids, skip_special_tokens=True)
    seen = {r.phrase for r in L.ROUTES if any(f" {r.phrase} " in f" {t.replace(' - ', '-')} " for t in texts)}
    assert seen == {r.phrase for r in L.ROUTES}
    originals = sum(" with stripes" in t for t in texts) / max(
        1, sum(L.parse(t.replace(" - ", "-"))["texture"] == "striped" for t in texts)
    )
    assert 0.35 < originals < 0.75


def test_toy_lang_names_how_to_train_it_until_it_is_shipped():
    from workbench.models import ModelNotFoundError, load_pipeline
    from workbench.models.toyworld import WEIGHTS_LANG

    if (WEIGHTS_LANG / "model_index.json").exists():
        pipe = load_pipeline("toy-lang")
        assert pipe.tokenizer.model_max_length == L.MAX_LENGTH and pipe.config._name_or_path == "toy-lang"
    else:
        with pytest.raises(ModelNotFoundError, match="train --language"):
            load_pipeline("toy-lang")


def test_docs_list_every_route_as_the_code_has_them():
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "toyworld.md").read_text()
    assert L.routes_markdown() in doc
