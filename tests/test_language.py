"""The language world's captions (issue 24): routes to each texture and shape, split between what
erasers may see and what only attacks and evaluation use, and a tokenizer that round-trips them."""

import itertools
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


def test_every_word_is_one_token_but_the_pieces_which_are_theirs(tokenizers):
    """BPE applies merges by rank, so one word's merges can block another's ('a n' before 'b a' made
    'banded' five tokens); the tokenizer settles them: each word is one token, or exactly its pieces."""
    _, lang = tokenizers
    for word in L.vocabulary():
        want = [*L.PIECES[word][:-1], L.PIECES[word][-1] + "</w>"] if word in L.PIECES else [word + "</w>"]
        assert lang.tokenize(word) == want, word
    assert lang.tokenize("a red banded circle with thin parallel bars")[2:] == [
        "banded</w>", "circle</w>", "with</w>", "thin</w>", "parallel</w>", "bars</w>"]  # fmt: skip


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


@pytest.fixture(scope="module")
def lang(toy, tmp_path_factory):
    """The language world before its fine-tune, under its name (what the world checks read)."""
    from workbench.models.toyworld.model import build_language

    pipe = build_language(toy, tmp_path_factory.mktemp("lang"))
    pipe.register_to_config(_name_or_path="toy-lang")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_language_parse_reads_every_original_caption_as_the_grammar_does():
    """The oracle's judge reads both worlds' captions with ``language.parse``: on every caption the
    original world's prompt sets make it must read what ``grammar.parse`` reads."""
    from workbench.models.toyworld import grammar, prompts

    texts = {p.text for p in prompts.toy_eval(n_per=2)} | {p.text for p in prompts.toy_textures()}
    texts |= {p.text for p in prompts.toy_shapes()} | {p.text for p in prompts.toy_swap()}
    for name in [*prompts.named_sets()]:
        texts |= {p.text for p in prompts.get(name)}
    for spec in itertools.product((*grammar.SHAPES, grammar.NO_OBJECT), grammar.COLOURS, grammar.TEXTURES, grammar.SCENES):
        for flags in itertools.product((True, False), repeat=3):  # every caption the training draws
            texts.add(grammar.Spec(*spec).caption(*flags))
    assert len(texts) > 300  # every distinct caption of the original world
    for t in texts:
        assert L.parse(t) == grammar.parse(t), t


def test_language_concepts_erase_through_train_routes_and_are_judged_on_heldout_ones():
    from workbench.models.toyworld.prompts import toy_eval
    from workbench.prompts.concepts import get_concept

    for value in ("striped", "circle"):
        c = get_concept(f"lang:{value}")
        attr = c.extra["attribute"]
        train = {r.phrase for r in L.routes(value, "train")}
        held = [r.phrase for r in L.routes(value, "heldout")]
        for p in c.target:
            assert L.parse(p.text)[attr] == value and any(f" {ph} " in f" {p.text} " for ph in train), p.text
        for p in c.anchor:
            assert L.parse(p.text)[attr] != value
        used = set()
        for p, base, variants in zip(c.eval_target, c.bases, c.extra["routes"]):
            assert L.parse(p.text)[attr] == value
            phrase = next(ph for ph in sorted(held, key=len, reverse=True) if f" {ph} " in f" {p.text} ")
            used.add(phrase)
            assert phrase not in base and L.parse(base)[attr] != value
            assert p.text in variants and len(variants) == len(held)
            assert {L.parse(v)[attr] for v in variants} == {value}
        assert used == set(held)  # every held-out route is judged
        original = [p for p in toy_eval(n_per=2) if L.parse(p.text)[attr] != value]
        assert [(p.text, p.seed) for p in c.eval_other] == [(p.text, p.seed) for p in original]
        words = set(c.extra["heldout_words"])
        assert words and not words & {w for ph in train for w in ph.split()}


def test_route_attack_is_each_prompt_under_every_heldout_route(lang):
    """The route attack's verdict per prompt is 'any route shows it', read against a hand loop over
    the same images; the per-route rates are each route's share."""
    from workbench.attacks import attack
    from workbench.editing.edits import Edit
    from workbench.evaluation.generation import generate
    from workbench.evaluation.judges import judge_of
    from workbench.prompts.concepts import get_concept

    r = attack(lang, "toy", Edit("unedited"), "lang:striped", "routes", budget=2, steps=3)
    c = get_concept("lang:striped", n_per=1)
    judge = judge_of("toy", c)
    seeds = [p.seed for p in c.eval_target]
    per = [[bool(judge(generate(lang, [v[j]], [s], 3, 1.5), [v[j]]).shown[0]) for j in range(2)]
           for v, s in zip(c.extra["routes"], seeds)]  # fmt: skip
    assert r.after == [any(x) for x in per]
    assert r.info["per_route"] == {c.extra["route_phrases"][j]: sum(x[j] for x in per) / len(per) for j in range(2)}
    assert all(a in v[:2] for a, v in zip(r.adversarial, c.extra["routes"]))
    curve = {p["budget"]: p["shown"] for p in r.info["curve"]}  # after 1 route, after 2: from the same images
    assert curve == {0: r.before, 1: [x[0] for x in per], 2: r.after}


def test_the_route_curve_counts_a_prompt_once_one_of_its_first_routes_showed_it():
    from workbench.attacks.routes import route_curve

    tried = [[False, True, False], [True, False, False], [False, False, False], [False, False, True]]
    assert route_curve(tried, [1, 2, 3]) == {1: [False, True, False, False], 2: [True, True, False, False],
                                             3: [True, True, False, True]}  # fmt: skip


def test_heldout_attacks_choose_only_heldout_route_tokens(lang):
    from workbench.attacks import attack, heldout_tokens
    from workbench.editing.edits import Edit
    from workbench.prompts.concepts import get_concept

    c = get_concept("lang:striped", n_per=1)
    ids = heldout_tokens(lang, c)
    tokens = set(lang.tokenizer.convert_ids_to_tokens(ids.tolist()))
    assert {"stripy</w>", "banded</w>", "ze", "bra</w>", "parallel</w>"} <= tokens
    assert not tokens & {"striped</w>", "stripes</w>", "bands</w>", "with</w>"}  # no train route's word
    r = attack(lang, "toy", Edit("unedited"), c, "unlearndiff-heldout", budget=2, steps=3)
    assert set(r.info["vocabulary"]) == tokens
    for text, adv in zip(r.prompts, r.adversarial):
        extra = adv.split()[len(text.split()) :] if adv.startswith(text) else adv.split()[: len(adv.split()) - len(text.split())]
        assert extra and all(f"{w}</w>" in tokens or w in tokens for w in extra), adv
    with pytest.raises(ValueError, match="has no held-out routes"):
        attack(lang, "toy", Edit("unedited"), "striped", "routes", budget=1, steps=3)


def test_an_edit_made_on_one_world_is_refused_on_the_other(toy, lang, tmp_path, capsys):
    """The two worlds share the UNet and differ in the text encoder: the edit's recorded hashes of
    both must match; a language concept on the original world is refused with the fix."""
    from workbench.cli import main
    from workbench.editing.edits import applied
    from workbench.editing.make import make_edit

    edit = make_edit(toy, "conceptprune", "striped", {"t_hat": 2}, {"steps": 3, "progress": False})
    with pytest.raises(ValueError, match="made for other weights \\(text_encoder"):
        with applied(lang, edit):
            pass
    with applied(toy, edit):  # its own world takes it
        pass
    lang_edit = make_edit(lang, "conceptprune", "lang:striped", {"t_hat": 2}, {"steps": 3, "progress": False})
    with pytest.raises(ValueError, match="made for other weights"):
        with applied(toy, lang_edit):
            pass
    assert main(["attack", "--attack", "routes", "--edit", "none", "--concept", "lang:striped", "--steps", "3",
                 "--out", str(tmp_path / "a"), "--quiet"]) == 2  # fmt: skip
    assert "belongs to the 'toy-lang' world" in capsys.readouterr().err


def test_the_language_section_reads_routes_and_decides_on_the_same_prompts():
    """Hand-made route-attack runs: the per-route table is the mean over seeds, and the sentences
    carry the pooled rates and the exact McNemar test of the same prompts."""
    from workbench.reports.attacked import mcnemar
    from workbench.reports.language import language_section, per_route

    prompts = [(f"p{i}", i) for i in range(8)]

    def row(eraser, seed, after, routes):
        return {"eraser": eraser, "attack": "routes", "seed": seed, "before": [False] * 8, "after": after,
                "prompts": prompts, "summary": {"per_route": routes}}  # fmt: skip

    rows = [row("unedited", 0, [True] * 8, {"stripy": 1.0, "banded": 0.5}),
            row("unedited", 1, [True] * 8, {"stripy": 0.5, "banded": 0.5}),
            row("ac lr=1e-4", 0, [True] * 6 + [False] * 2, {"stripy": 0.75, "banded": 0.0}),
            row("ac lr=1e-4", 1, [True] * 8, {"stripy": 0.25, "banded": 0.0}),
            row("conceptprune k=2%", 0, [False] * 8, {"stripy": 0.0, "banded": 0.0}),
            row("conceptprune k=2%", 1, [True] + [False] * 7, {"stripy": 0.0, "banded": 0.125})]  # fmt: skip
    erasers, routes, rates = per_route(rows)
    assert erasers == ["unedited", "ac lr=1e-4", "conceptprune k=2%"] and routes == ["stripy", "banded"]
    assert rates[0] == [0.75, 0.5] and rates[1] == [0.5, 0.0] and rates[2] == [0.0, 0.0625]
    text = "\n".join(language_section(rows, "lang:striped", {"ac lr=1e-4": (0.01, 0.0), "conceptprune k=2%": (0.02, 0.0)}))
    assert "| unedited | 75.0% | 50.0% |" in text
    p = mcnemar([False] * 8 + [True] + [False] * 7, [True] * 6 + [False] * 2 + [True] * 8)["p"]
    assert (
        f"conceptprune k=2% 6.2% against ac lr=1e-4 87.5% (McNemar p = {p:.3g}, 16 pairs): conceptprune k=2% resists better"
        in text
    )
    over = "\n".join(language_section(rows, "lang:striped", {"ac lr=1e-4": (0.2, 0.0)}))
    assert "not at matched harm (ac lr=1e-4 costs 20.0 points" in over
    assert language_section([{**r, "attack": "unlearndiff"} for r in rows], "lang:striped") == []
