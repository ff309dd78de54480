"""Feature extractors: the shipped classifier's accuracy, the interface's shapes and rules, Inception
with randomly initialised weights (nothing is downloaded), the offline error, the random projection."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import pytest
import torch

from ganstudio.data.decode import resize_crop
from ganstudio.data.idx import read_idx
from ganstudio.metrics import EXTRACTORS, FeatureError, inception, make_extractor, resolve_kind
from ganstudio.metrics.features import ClassifierExtractor, InceptionExtractor, RandomExtractor
from ganstudio.resources import resource

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _debian_split(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not (DEBIAN_FASHION_MNIST / f"{name}-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"{DEBIAN_FASHION_MNIST} is missing: run `apt-get install dataset-fashion-mnist`")
    images = torch.from_numpy(read_idx(DEBIAN_FASHION_MNIST / f"{name}-images-idx3-ubyte.gz").copy())
    labels = torch.from_numpy(read_idx(DEBIAN_FASHION_MNIST / f"{name}-labels-idx1-ubyte.gz").astype("int64"))
    return images.unsqueeze(1), labels


@pytest.fixture(scope="module")
def bundled() -> torch.Tensor:
    """64 bundled Fashion-MNIST images, uint8 (64, 1, 28, 28)."""
    path = resource("datasets", "fashion-mnist-10k", "train-images-idx3-ubyte.gz")
    return torch.from_numpy(read_idx(path)[:64].copy()).unsqueeze(1)


@pytest.fixture(scope="module")
def classifier() -> ClassifierExtractor:
    return make_extractor("classifier", channels=1, image_size=28)


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory) -> Path:
    """A randomly initialised FID Inception state_dict (fp16: half the 92 MB), shaped like the real one."""
    torch.manual_seed(0)
    state = {k: v.half() if v.is_floating_point() else v for k, v in inception.FIDInceptionV3().state_dict().items()}
    path = tmp_path_factory.mktemp("inception") / "random_inception.pt"
    torch.save(state, path)
    return path


@pytest.fixture
def empty_hub(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache and no network: downloads fail as they do offline."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(url, target, timeout=10.0):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(inception, "_download", offline)
    return tmp_path / "hub"


# --- the shipped classifier ------------------------------------------------------------------------
def test_bundled_classifier_reaches_its_test_accuracy_on_fashion_mnist_t10k(classifier):
    images, labels = _debian_split("t10k")
    probs = classifier.probabilities(images, batch_size=2000)
    accuracy = (probs.argmax(1) == labels).double().mean().item()
    assert accuracy >= 0.88
    assert accuracy == pytest.approx(classifier.meta["test_accuracy"], abs=2e-3)  # the README's number


def test_weights_file_is_small_plain_and_described():
    path = resource("feature_net", "fashion_cnn.pt")
    assert path.stat().st_size <= 2 * 1024 * 1024
    saved = torch.load(path, weights_only=True)
    assert {"version", "test_accuracy", "epochs", "seed", "feature_dim", "classes"} <= saved["meta"].keys()
    assert all(v.dtype in (torch.float16, torch.int64) for v in saved["state_dict"].values())
    assert f"{saved['meta']['test_accuracy']:.4f}" in resource("feature_net", "README.txt").read_text()


def test_classifier_features_are_float64_deterministic_and_batch_independent(classifier, bundled):
    features = classifier.features(bundled)
    assert features.shape == (64, classifier.dim) == (64, 128)
    assert features.dtype == torch.float64 and features.device.type == "cpu"
    assert torch.equal(features, classifier.features(bundled))
    torch.testing.assert_close(classifier.features(bundled, batch_size=7), features, rtol=1e-5, atol=1e-5)
    assert classifier.name == "fashion-cnn-v1" and classifier.num_classes == 10


def test_classifier_probabilities_sum_to_one_and_match_the_one_pass_api(classifier, bundled):
    probs = classifier.probabilities(bundled)
    assert probs.shape == (64, 10) and probs.dtype == torch.float64
    torch.testing.assert_close(probs.sum(1), torch.ones(64, dtype=torch.float64))
    features, probs_again = classifier.features_and_probabilities(bundled)
    assert torch.equal(probs, probs_again) and features.shape == (64, 128)


def test_classifier_reads_32px_and_rgb_images_like_28px_gray(classifier, bundled):
    extractor = make_extractor("auto", channels=1, image_size=32)
    assert isinstance(extractor, ClassifierExtractor)
    base = classifier.probabilities(bundled).argmax(1)
    upscaled = extractor.probabilities(resize_crop(bundled, 32)).argmax(1)  # as the data pipeline makes 32 px
    assert (upscaled == base).double().mean() >= 0.9
    rgb = bundled.expand(-1, 3, -1, -1).contiguous()
    torch.testing.assert_close(classifier.features(rgb), classifier.features(bundled))


def test_auto_picks_classifier_inception_or_random(empty_hub, random_inception_weights):
    (empty_hub / "checkpoints").mkdir(parents=True)
    (empty_hub / "checkpoints" / inception.WEIGHTS_NAME).symlink_to(random_inception_weights)
    assert isinstance(make_extractor("auto", channels=1, image_size=28), ClassifierExtractor)
    assert isinstance(make_extractor("auto", channels=1, image_size=32), ClassifierExtractor)
    assert isinstance(make_extractor("auto", channels=3, image_size=32), InceptionExtractor)  # from the hub cache
    assert isinstance(make_extractor("auto", channels=1, image_size=64), RandomExtractor)


def test_resolve_kind_rules_and_errors():
    assert [resolve_kind("auto", c, s) for c, s in [(1, 28), (1, 32), (3, 28), (3, 64), (1, 64)]] == [
        "classifier", "classifier", "inception", "inception", "random"]
    assert all(resolve_kind(k, 1, 64) == k for k in EXTRACTORS if k != "auto")
    with pytest.raises(FeatureError, match="'vgg' is not one of auto, classifier, inception, random"):
        make_extractor("vgg", channels=1, image_size=28)
    assert issubclass(FeatureError, ValueError)


def test_every_catalog_extractor_has_its_builder_and_every_builder_its_row():
    import typing

    from ganstudio.catalog import EXTRACTOR_CHOICES
    from ganstudio.config import EvalConfig

    assert set(EXTRACTORS) == set(EXTRACTOR_CHOICES) - {"auto"}
    assert set(typing.get_args(EvalConfig.model_fields["extractor"].annotation)) == set(EXTRACTOR_CHOICES)


def test_extractors_refuse_what_is_not_uint8_nchw(classifier):
    with pytest.raises(ValueError, match="uint8 images"):
        classifier.features(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="uint8 images"):
        classifier.features(torch.zeros(1, 28, 28, dtype=torch.uint8))


# --- Inception (random weights: same shapes, nothing downloaded) -----------------------------------
def test_inception_gives_pool3_features_and_1008_class_probabilities(random_inception_weights):
    extractor = make_extractor("inception", channels=3, image_size=32, inception_weights=random_inception_weights)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    features, probs = extractor.features_and_probabilities(images, batch_size=2)
    assert features.shape == (3, 2048) and probs.shape == (3, 1008)
    assert features.dtype == probs.dtype == torch.float64 and torch.isfinite(features).all()
    torch.testing.assert_close(probs.sum(1), torch.ones(3, dtype=torch.float64))
    gray = images[:, :1]
    torch.testing.assert_close(extractor.features(gray), extractor.features(gray.expand(-1, 3, -1, -1)))
    assert extractor.name == "inception-fid" and extractor.num_classes == 1008


def test_inception_preprocessing_matches_pytorch_fid():
    images = torch.tensor([[[[0, 255], [255, 0]]]], dtype=torch.uint8)
    x = inception.preprocess(images)
    assert x.shape == (1, 3, 299, 299)
    assert x.min().item() == pytest.approx(-1.0) and x.max().item() == pytest.approx(1.0)


def test_inception_offline_without_weights_says_what_to_download(empty_hub):
    with pytest.raises(FeatureError) as caught:
        make_extractor("inception", channels=3, image_size=32)
    message = str(caught.value)
    assert inception.WEIGHTS_URL in message and "eval.inception_weights" in message
    assert str(empty_hub / "checkpoints" / inception.WEIGHTS_NAME) in message
    assert "name resolution" in message


def test_inception_downloads_into_the_hub_cache_when_online(empty_hub, random_inception_weights, monkeypatch):
    fetched = []

    def download(url, target, timeout=10.0):
        fetched.append(url)
        target.parent.mkdir(parents=True)
        target.write_bytes(random_inception_weights.read_bytes())

    monkeypatch.setattr(inception, "_download", download)
    assert inception.find_weights() == empty_hub / "checkpoints" / inception.WEIGHTS_NAME
    assert fetched == [inception.WEIGHTS_URL]


def test_inception_explains_a_missing_or_wrong_weights_file(tmp_path):
    with pytest.raises(FeatureError, match="does not exist"):
        make_extractor("inception", channels=3, image_size=32, inception_weights=tmp_path / "nope.pth")
    with pytest.raises(FeatureError, match="does not hold pytorch-fid's Inception-v3 weights"):
        make_extractor("inception", channels=3, image_size=32,
                       inception_weights=resource("feature_net", "fashion_cnn.pt"))


# --- random projection -----------------------------------------------------------------------------
def test_random_extractor_is_deterministic_and_shaped():
    images = torch.randint(0, 256, (5, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    first = make_extractor("random", channels=3, image_size=64)
    second = RandomExtractor((3, 64, 64))
    features = first.features(images)
    assert features.shape == (5, 256) and features.dtype == torch.float64
    assert torch.equal(features, second.features(images))
    torch.testing.assert_close(second.features(images, batch_size=2), features)  # BLAS may block differently
    assert first.probabilities(images) is None and first.num_classes is None
    assert first.name == second.name and "3x64x64" in first.name
    assert not torch.equal(features, RandomExtractor((3, 64, 64), seed=1).features(images))
    with pytest.raises(ValueError, match="made for images"):
        first.features(images[:, :, :32, :32])
