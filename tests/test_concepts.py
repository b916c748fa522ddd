"""Concepts as data, judges behind one interface, and the one harm function."""

import numpy as np
import pytest
import torch

from workbench.evaluation.harm import harm
from workbench.evaluation.judges import JudgeError, make_judge
from workbench.models.toyworld.draw import draw, sample_specs
from workbench.models.toyworld.grammar import parse
from workbench.prompts.concepts import ConceptError, from_toml, get_concept


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(5)
    return draw(**sample_specs(4, g), generator=g)


def test_a_toy_concept_holds_its_calibration_pairs_held_out_captions_and_bases():
    c = get_concept("striped", n_per=1)
    assert [p.text + " with stripes" for p in c.anchor] == [p.text for p in c.target]
    assert [p.seed for p in c.anchor] == [p.seed for p in c.target]
    assert all(parse(p.text)["texture"] == "striped" for p in c.eval_target)
    assert all(parse(p.text)["texture"] != "striped" for p in c.eval_other)
    assert len(c.eval_target) + len(c.eval_other) == 4 * 4 * 4  # texture x colour x shape, n_per = 1
    assert [b + "" for b in c.bases] == [p.text.replace(" with stripes", "") for p in c.eval_target]
    assert get_concept("striped", n_per=2).eval_target != c.eval_target
    with pytest.raises(ConceptError, match="unknown concept 'plain'.*nudity"):
        get_concept("plain")


def test_paper_concepts_pair_their_prompts_and_name_their_judge():
    v = get_concept("van_gogh")
    assert v.judge == "clip" and v.labels[0] == "a painting by Van Gogh"
    assert all(t.text.startswith(a.text + " in the style of") for t, a in zip(v.target, v.anchor))
    assert v.base_of(v.eval_target[0].text) == "a house"
    n = get_concept("nudity")
    assert n.judge == "nudenet" and all("naked" in p.text for p in n.eval_target)
    assert not any("naked" in p.text for p in n.eval_other) and not any("naked" in b for b in n.bases)
    assert get_concept("nudity", judge="clip:/x").judge == "clip:/x"


def test_a_concept_file_reads_inline_prompts_text_and_csv_files(tmp_path):
    (tmp_path / "eval.csv").write_text("case_number,prompt,evaluation_seed\n1,a naked woman at night,42\n2,a nude man,7\n")
    (tmp_path / "anchor.txt").write_text("# anchors\na woman\n\na man\n")
    spec = tmp_path / "nude.toml"
    spec.write_text(
        'name = "nude"\njudge = "nudenet:0.5"\ntarget = ["a naked woman", "a naked man"]\nanchor = "anchor.txt"\n'
        '[eval]\ntarget = "eval.csv"\nother = ["a dressed woman"]\n'
    )
    c = get_concept(spec)
    assert [p.text for p in c.anchor] == ["a woman", "a man"] and c.judge == "nudenet:0.5"
    assert [(p.text, p.seed) for p in c.eval_target] == [("a naked woman at night", 42), ("a nude man", 7)]
    assert [p.text for p in c.eval_other] == ["a dressed woman"]
    assert c.bases == ("a woman at night", "a nude man")  # 'naked' is what the targets add to their anchors
    assert from_toml(spec) == c


@pytest.mark.parametrize(
    "body, match",
    [
        ('name = "x"\ntarget = ["a"]\nanchor = ["b"]\n', "lacks judge"),
        ('name = "x"\njudge = "toy"\ntarget = ["a", "b"]\nanchor = ["c"]\n', "2 target prompts but 1 anchor"),
        ('name = "x"\njudge = "toy"\ntarget = ["a"]\nanchor = ["b"]\ncolour = 1\n', "unknown keys \\['colour'\\]"),
        ('name = "x"\njudge = "toy"\ntarget = "missing.csv"\nanchor = ["b"]\n', "missing.csv does not exist"),
        ('name = "x"\njudge = "toy"\ntarget = ["a"\n', "not valid TOML"),
    ],
)
def test_a_bad_concept_file_says_what_to_fix(tmp_path, body, match):
    spec = tmp_path / "c.toml"
    spec.write_text(body)
    with pytest.raises(ConceptError, match=match):
        get_concept(spec)


def test_harm_counts_the_concepts_own_attribute_on_its_siblings_and_degraded_images():
    before = {"concept_rate": 1.0, "degraded_rate": 0.0, "other_accuracy": {"shape": 1.0, "texture": 1.0}, "fid": 5.0}
    sibling = {"concept_rate": 0.0, "degraded_rate": 0.0, "other_accuracy": {"shape": 0.98, "texture": 0.7}, "fid": 6.0}
    h = harm(before, sibling)
    assert h.attribute == "texture" and h.worst == pytest.approx(0.3) and h.utility == {"fid": 1.0}
    assert not h.within(0.1) and h.within(0.5)
    broken = {**before, "degraded_rate": 0.2}
    assert harm(before, broken).worst == 0.0 and harm(before, broken).degraded == pytest.approx(0.2)
    assert not harm(before, broken).within(0.1) and harm(before, broken).cost == pytest.approx(0.2)
    nothing = harm(
        {"concept_rate": 1.0, "degraded_rate": float("nan"), "other_accuracy": {}},
        {"concept_rate": 0.0, "degraded_rate": float("nan"), "other_accuracy": {}},
    )
    assert np.isnan(nothing.worst) and nothing.attribute is None and nothing.within(0.0)


def test_the_toy_judge_reads_what_toy_evaluate_reads(toy):
    """The generic reading (concept, judge) gives toy_evaluate's numbers on the same images."""
    from workbench.evaluation.judging import evaluate
    from workbench.evaluation.toy import toy_evaluate
    from workbench.models.toyworld import load_oracle

    oracle = load_oracle()
    for name in ("striped", "circle"):
        old = toy_evaluate(toy, oracle, None, name, n_per=1, steps=3).summary()
        new = evaluate(toy, get_concept(name, n_per=1), "toy", steps=3).summary()
        assert new == old
    v = make_judge("toy", get_concept("striped"))
    with pytest.raises(JudgeError, match="toy concepts only"):
        make_judge("toy", get_concept("nudity"))
    assert v.name == "toy"


def test_nudenet_judge_finds_no_nudity_in_drawn_shapes_and_refuses_a_wrong_class(images):
    from workbench.evaluation.judges.nudenet import NudeNetJudge
    from workbench.evaluation.metrics import NudityDetector

    j = make_judge("nudenet", get_concept("nudity"))
    v = j(images, ["a"] * len(images))
    assert not v.shown.any() and v.score.shape == (len(images),) and (v.score > 0).all()
    low = make_judge(f"nudenet:{float(np.median(v.score))}", get_concept("nudity"))(images, ["a"] * len(images))
    assert low.shown.any() and not low.shown.all()  # the threshold is the one given
    np.testing.assert_allclose(v.score, NudityDetector().class_scores(images))
    with pytest.raises(ValueError, match="NudeNet has no class \\['NAKED_ELBOW'\\]"):
        NudeNetJudge(classes=["NAKED_ELBOW"])
    with pytest.raises(JudgeError, match="must be a number"):
        make_judge("nudenet:high", get_concept("nudity"))


def test_clip_and_classifier_judges_load_from_folders(tmp_path, images):
    from workbench.models import ModelNotFoundError
    from workbench.models.tiny import save_tiny_classifier, save_tiny_clip

    clip = save_tiny_clip(tmp_path / "clip")
    j = make_judge(f"clip:{clip}", get_concept("van_gogh"))
    p = j.probabilities(images)
    assert p.shape == (len(images), len(get_concept("van_gogh").labels))
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    v = j(images, ["a house"] * len(images))
    np.testing.assert_array_equal(v.shown, p.argmax(1) == 0)
    assert set(j.utility(images, ["a house"] * len(images))) == {"clip_score"}
    with pytest.raises(ModelNotFoundError, match="huggingface-cli download"):
        make_judge(f"clip:{tmp_path / 'nowhere'}", get_concept("van_gogh"))
    with pytest.raises(JudgeError, match="at least two labels"):
        make_judge(f"clip:{clip}", get_concept("nudity"))
    cls = save_tiny_classifier(tmp_path / "cls")
    c = make_judge(f"classifier:{cls}", get_concept("church"))
    logits = c.classifier.logits(images)
    np.testing.assert_array_equal(c(images, ["x"] * len(images)).shown, (logits.argmax(1) == 0).numpy())
    with pytest.raises(JudgeError, match="no class for 'parachute'|no class for 'van_gogh'"):
        make_judge(f"classifier:{cls}", get_concept("van_gogh"))
    with pytest.raises(JudgeError, match="unknown judge 'oracle'"):
        make_judge("oracle", get_concept("striped"))


def test_workbench_concepts_lists_and_prints(capsys):
    from workbench.cli import main

    assert main(["concepts"]) == 0
    listed = capsys.readouterr().out
    assert "nudity" in listed and "striped" in listed and "van_gogh" in listed
    assert main(["concepts", "nudity", "--n-per", "1"]) == 0
    rows = [r.split("\t") for r in capsys.readouterr().out.splitlines()[1:]]
    assert {r[0] for r in rows} == {"target", "anchor", "eval.target", "eval.other"}
    assert all("naked" in r[2] for r in rows if r[0] == "eval.target") and len([r for r in rows if r[0] == "eval.target"]) == 8


def test_a_store_set_finds_its_concept():
    from workbench.prompts.concepts import concept_for_set

    assert concept_for_set("naked").name == "nudity" and concept_for_set("van_gogh").name == "van_gogh"
    assert concept_for_set("striped", judge="clip:/x").judge == "clip:/x"
    with pytest.raises(ConceptError, match="unknown concept 'wavy'"):
        concept_for_set("wavy")
