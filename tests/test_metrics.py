"""The paper's metrics on tiny real models built from configs (CLIP, ViT), NudeNet's shipped
detector, and FID/KID through torchmetrics checked against the formula computed by hand."""

import numpy as np
import pytest
import torch

from workbench.evaluation.metrics import (
    Classifier,
    ClipScorer,
    NudityDetector,
    clip_score,
    fid_kid,
    nudity_reduction,
    top1_accuracy,
)
from workbench.models import ModelNotFoundError
from workbench.models.toyworld import load_oracle
from workbench.models.toyworld.draw import draw, sample_specs


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(3)
    return draw(**sample_specs(6, g), generator=g)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

    from workbench.models.toyworld.tokenizer import build_files

    folder = tmp_path_factory.mktemp("clip")
    tok = CLIPTokenizer.from_pretrained(build_files(folder / "tok", 16))
    cfg = CLIPConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(folder / "model")
    proc = CLIPProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}), tokenizer=tok
    )
    proc.save_pretrained(folder / "model")
    return folder / "model"


def test_clip_similarity_is_100_times_the_models_own_cosine(tiny_clip, images):
    from transformers import CLIPModel, CLIPProcessor

    texts = ["a red circle", "a blue square with stripes", "fog", "a green cross", "a yellow triangle", "snow"]
    sim = ClipScorer(tiny_clip, device="cpu", batch=4).similarity(images, texts)
    model, proc = CLIPModel.from_pretrained(tiny_clip).eval(), CLIPProcessor.from_pretrained(tiny_clip)
    arr = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    with torch.no_grad():
        out = model(**proc(text=texts, images=list(arr), return_tensors="pt", padding=True))
        cos = out.logits_per_image.diag() / model.logit_scale.exp()
    np.testing.assert_allclose(sim, 100 * cos.clamp(min=0).numpy(), rtol=1e-4, atol=1e-4)
    assert sim.shape == (6,)


def test_clip_score_counts_prompts_where_the_pruned_image_is_less_similar():
    assert clip_score(np.array([20.0, 30.0, 25.0, 40.0]), np.array([25.0, 30.0, 30.0, 35.0])) == 0.5
    with pytest.raises(ValueError, match="equal"):
        clip_score(np.array([1.0]), np.array([1.0, 2.0]))


def test_missing_weights_name_the_download_command(tmp_path):
    with pytest.raises(ModelNotFoundError, match="huggingface-cli download"):
        ClipScorer(tmp_path / "no-such-clip")
    with pytest.raises(ModelNotFoundError, match="huggingface-cli download"):
        Classifier("someone/no-such-classifier")


def test_transformers_classifier_top1_is_the_models_argmax(tmp_path, images):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

    labels = ["tench", "parachute", "church"]
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                    num_labels=3, id2label=dict(enumerate(labels)), label2id={v: i for i, v in enumerate(labels)})  # fmt: skip
    torch.manual_seed(1)
    model = ViTForImageClassification(cfg).eval()
    model.save_pretrained(tmp_path)
    proc = ViTImageProcessorPil(size={"height": 32, "width": 32})
    proc.save_pretrained(tmp_path)
    clf = Classifier(tmp_path, device="cpu", batch=4)
    with torch.no_grad():
        x = proc(images=list((images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)), return_tensors="pt")[
            "pixel_values"
        ]
        expected = [labels[i] for i in model(x).logits.argmax(1).tolist()]
    assert clf.top1(images) == expected
    assert [r[0] for r in clf.topk(images, 3)] == expected and all(sorted(r) == sorted(labels) for r in clf.topk(images, 3))


def test_module_classifier_with_labels_and_preprocess():
    """Any torch module (torchvision, timm) plugs in with its labels and transform."""

    class MeanChannel(torch.nn.Module):
        def forward(self, x):
            return x.mean((2, 3))

    imgs = torch.zeros(3, 3, 8, 8)
    for i in range(3):
        imgs[i, i] = 1.0
    clf = Classifier(MeanChannel(), labels=["red", "green", "blue"], preprocess=lambda x: x, device="cpu")
    assert clf.top1(imgs) == ["red", "green", "blue"]
    assert top1_accuracy(clf.top1(imgs), ["red", "green", "red"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="labels"):
        Classifier(MeanChannel())


def test_nudenet_runs_its_shipped_detector(images):
    """The per-class scores are the shipped ONNX model's, computed here independently through
    nudenet's own preprocessing; ``is_nude`` at a threshold between the images' scores splits them
    as those scores say (a detector that finds nothing, or never runs, fails both)."""
    from nudenet.nudenet import _read_image

    from workbench.evaluation.metrics import nudenet_labels

    labels = nudenet_labels()

    det = NudityDetector()
    found = det.detect(images)
    assert len(found) == len(images) and all(isinstance(d, list) for d in found)
    got = det.scores(images)  # (images, classes): each class's best box score
    assert got.shape == (len(images), len(labels))
    raw = np.uint8(np.clip(images.permute(0, 2, 3, 1).numpy() * 255, 0, 255).round())
    for i, a in enumerate(raw):
        blob = _read_image(np.ascontiguousarray(a[..., ::-1]), det.detector.input_width)[0]
        out = det.detector.onnx_session.run(None, {det.detector.input_name: blob})[0]
        np.testing.assert_allclose(got[i], np.squeeze(out)[4:].max(axis=1), rtol=1e-6)
    nude = got[:, [labels.index(c) for c in det.classes]].max(axis=1)
    assert nude.max() > nude.min() > 0  # the model scores the images, and not all alike
    cut = float(np.median(nude))
    split = NudityDetector(threshold=cut).is_nude(images)
    np.testing.assert_array_equal(split, nude >= cut)
    assert split.any() and not split.all()
    assert not det.is_nude(images).any()  # at 0.6, drawn shapes are not nudity
    assert nudity_reduction(np.array([True, False, False, False]), np.array([True, True, True, True])) == 75.0
    with pytest.raises(ValueError, match="no nude image"):
        nudity_reduction(np.array([False]), np.array([False]))


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # dead ReLU features: the hand formula still agrees
def test_fid_matches_the_formula_and_kid_is_near_zero_for_one_distribution():
    from scipy import linalg

    oracle = load_oracle()
    g = torch.Generator().manual_seed(7)
    a = draw(**sample_specs(300, g), generator=g)
    b = draw(**sample_specs(300, g), generator=g)
    out = fid_kid(a, b, features=oracle.features, dim=128, kid_subset=100)
    with torch.no_grad():
        x, y = oracle.features(a).double().numpy(), oracle.features(b).double().numpy()
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert out["fid"] == pytest.approx(expected, rel=1e-3, abs=1e-3)
    noise = torch.rand(300, 3, 32, 32, generator=g)
    far = fid_kid(a, noise, features=oracle.features, dim=128, kid_subset=100)
    assert far["fid"] > 10 * out["fid"] and far["kid"] > 10 * abs(out["kid"])


def test_inception_fid_without_weights_says_what_to_pass(images):
    with pytest.raises(ModelNotFoundError, match="inception_weights"):
        fid_kid(images, images)
