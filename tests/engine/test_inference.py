"""Using a trained generator without a Trainer (ganstudio/engine/inference.py): every family's networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganstudio.config import RunConfig
from ganstudio.engine import CheckpointError, Trainer, checkpoint, seeds
from ganstudio.engine.inference import (
    class_labels, eval_images, fixed_noise, generate, load_generator, load_networks, num_classes,
    seeded_noise,
)

FAMILIES = {"gan": {}, "cgan": {"model": {"num_classes": 10}}, "autoencoder": {"loss": {"name": "mse"}},
            "vae": {"loss": {"name": "bernoulli"}}}


def tiny_family_config(family: str, **train) -> RunConfig:
    extra = FAMILIES[family]
    return RunConfig.model_validate({
        "name": family, "data": {"source": "bundled", "max_images": 64, "image_size": 28},
        "model": {"family": family, "arch": "dcgan", "z_dim": 6, "g_width": 8, "d_width": 8, **extra.get("model", {})},
        "loss": extra.get("loss", {}),
        "train": {"batch_size": 16, "device": "cpu", "log_every": 1, "sample_every": 100, "checkpoint_every": 100,
                  "num_samples": 8, "seed": 2, "steps": 2, **train},
    })


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 2-step run folder per family."""
    root = tmp_path_factory.mktemp("families")
    folders = {}
    for family in FAMILIES:
        trainer = Trainer(tiny_family_config(family), root / family)
        trainer.run()
        trainer.close()
        folders[family] = root / family
    return folders


@pytest.mark.parametrize("family, encoder_out", [("gan", None), ("cgan", None), ("autoencoder", 6), ("vae", 12)])
def test_load_networks_gives_the_encoder_only_to_autoencoders(runs, family, encoder_out):
    config, g, encoder = load_networks(runs[family])
    assert config.model.family == family and not g.training
    assert g(torch.zeros(2, 6), torch.zeros(2, dtype=torch.long)).shape == (2, 1, 28, 28)
    if encoder_out is None:
        assert encoder is None
    else:
        assert not encoder.training and encoder(torch.zeros(3, 1, 28, 28)).shape == (3, encoder_out)
    assert num_classes(g) == (10 if family == "cgan" else 0)


def test_generate_passes_labels_only_to_a_conditional_generator(runs):
    _, g = load_generator(runs["cgan"])
    z = seeded_noise(8, 6, 0)
    images = generate(g, z, class_labels(8, 10), batch_size=3)  # batches split labels like z
    assert images.shape == (8, 28, 28, 1) and images.dtype == np.uint8
    with torch.no_grad():
        direct = g(z, class_labels(8, 10))
    assert np.array_equal(images, generate(g, z, class_labels(8, 10)))
    assert np.abs(images.astype(float) - (direct.permute(0, 2, 3, 1).numpy() + 1) * 127.5).max() <= 0.5 + 1e-3
    with pytest.raises(ValueError, match="conditioned on 10 classes: give one label per latent"):
        generate(g, z)
    with pytest.raises(ValueError, match="3 labels for 8 latent vectors"):
        generate(g, z, torch.tensor([0, 1, 2]))
    _, plain = load_generator(runs["gan"])
    assert generate(plain, z).shape == (8, 28, 28, 1)  # no labels needed (and none passed)


def test_eval_images_cover_every_class_equally(runs):
    config, g = load_generator(runs["cgan"])
    images = eval_images(g, config, 10)
    expected = generate(g, seeded_noise(10, 6, config.train.seed + seeds.EVAL), torch.arange(10) % 10)
    assert images.shape == (10, 1, 28, 28)
    assert torch.equal(images, torch.from_numpy(expected).permute(0, 3, 1, 2))
    assert class_labels(6, 4).tolist() == [0, 1, 2, 3, 0, 1]


def test_fixed_noise_is_the_trainers(runs):
    config = tiny_family_config("gan")
    trainer = Trainer(config)
    try:
        assert torch.equal(fixed_noise(config), trainer.fixed_noise.cpu())
        assert torch.equal(fixed_noise(config, 3), trainer.fixed_noise.cpu()[:3])
    finally:
        trainer.close()


def test_the_ema_generator_is_loaded_when_the_run_kept_one(tmp_path):
    trainer = Trainer(tiny_family_config("gan", ema=0.9), tmp_path / "run")
    trainer.run()
    trainer.close()
    payload = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    _, g = load_generator(tmp_path / "run")
    for name, value in g.state_dict().items():
        assert torch.equal(value, payload["state"]["g_ema"][name])
    assert any(not torch.equal(payload["state"]["g"][k], v) for k, v in payload["state"]["g_ema"].items())


def test_weights_that_do_not_fit_the_config_are_a_checkpoint_error(runs, tmp_path):
    payload = checkpoint.load(runs["vae"] / "checkpoints" / "last.pt")
    del payload["state"]["d"]  # a VAE checkpoint without its encoder
    path = tmp_path / "broken.pt"
    checkpoint.save(path, {k: v for k, v in payload.items() if k not in ("format", "format_version",
                                                                         "ganstudio_version")})
    with pytest.raises(CheckpointError, match="network weights do not match its config"):
        load_networks(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_networks(tmp_path / "nowhere.pt")
