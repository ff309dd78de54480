import math
import pickle

import numpy as np
import pytest
import torch

from ganstudio.engine import CheckpointError, RunDir, Samples, StepStats, Trainer, TrainingError, TrainWarning
from ganstudio.engine import checkpoint
from ganstudio.engine.trainer import to_uint8


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _flatten(state, prefix=""):
    """Every tensor and plain value in a nested state dict, keyed by path."""
    out = {}
    if isinstance(state, dict):
        for k, v in state.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
    elif isinstance(state, (list, tuple)):
        for i, v in enumerate(state):
            out.update(_flatten(v, f"{prefix}/{i}"))
    else:
        out[prefix] = state
    return out


def _assert_states_equal(a, b):
    fa, fb = _flatten(a), _flatten(b)
    assert fa.keys() == fb.keys()
    for key in fa:
        x, y = fa[key], fb[key]
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y), key
        elif key != "/elapsed":
            assert x == y, key


@pytest.mark.parametrize("loss", ["bce", "minimax", "lsgan", "wgan", "hinge"])
def test_steps_change_weights_and_log_finite_values(tiny_config, loss):
    trainer = Trainer(tiny_config.updated("loss.name", loss))
    g0, d0 = _params(trainer.g), _params(trainer.d)
    stats = [trainer.step() for _ in range(3)]
    assert all(s.step == i + 1 for i, s in enumerate(stats))
    for s in stats:
        for value in (s.loss_d, s.loss_g, s.d_real, s.d_fake, s.grad_norm_d, s.grad_norm_g):
            assert math.isfinite(value)
    assert any(not torch.equal(a, b) for a, b in zip(g0, _params(trainer.g)))
    assert any(not torch.equal(a, b) for a, b in zip(d0, _params(trainer.d)))


def test_wgan_gp_reports_penalty_and_n_critic_uses_more_batches(tiny_config):
    config = tiny_config.with_overrides(["loss.name='wgan-gp'", "model.d_norm='layer'", "optim.n_critic=3"])
    trainer = Trainer(config)
    stats = trainer.step()
    assert stats.extra["gradient_penalty"] >= 0
    # 3 D steps of 16 real images each on 256 images: the data position moved by 48
    assert trainer.global_step == 1
    assert trainer.batches.state_dict() != Trainer(config).batches.state_dict()


def test_wgan_clips_discriminator_weights(tiny_config):
    trainer = Trainer(tiny_config.with_overrides(["loss.name='wgan'", "loss.clip_value=0.005", "optim.name='rmsprop'"]))
    trainer.step()
    weights = [p for name, p in trainer.d.named_parameters()]
    assert max(p.abs().max().item() for p in weights) <= 0.005 + 1e-9


def test_sample_shape_dtype_and_no_side_effects(tiny_config):
    a, b = Trainer(tiny_config), Trainer(tiny_config)
    images = a.sample()
    assert images.shape == (16, 28, 28, 1) and images.dtype == np.uint8
    assert a.sample(n=4, seed=3).shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(a.sample(n=4, seed=3), a.sample(n=4, seed=3))
    a.step(), b.step()
    a.sample(), b.step(), a.step()
    _assert_states_equal(a.state_dict(), b.state_dict())  # sampling changed nothing


@pytest.mark.parametrize("overrides", [
    [],
    ["model.arch='mlp'", "model.d_dropout=0.3"],
    ["loss.name='wgan-gp'", "model.d_norm='layer'", "optim.n_critic=2"],
    ["train.ema=0.9"],
    ["model.family='cgan'"],
    ["model.family='cgan'", "model.arch='mlp'", "model.conditioning='concat'"],
    ["model.family='autoencoder'", "loss.name='mse'"],
    ["model.family='vae'", "loss.name='bernoulli'", "loss.kl_warmup=5", "data.holdout=32", "train.ema=0.9"],
    ["model.spectral_norm=true", "train.augment=['translation', 'cutout', 'color']", "loss.instance_noise=0.1",
     "loss.r1_weight=1.0", "loss.label_smoothing=0.1", "optim.clip_d=1.0", "optim.clip_g=1.0",
     "optim.schedule='cosine'", "optim.schedule_steps=20", "optim.weight_decay_d=0.01"],
])
def test_resume_is_bit_exact(tiny_config, tmp_path, overrides):
    config = tiny_config.with_overrides(overrides + ["train.steps=20", "train.checkpoint_every=1000"])
    straight = Trainer(config, tmp_path / "straight")
    straight.run()

    first = Trainer(config.updated("train.steps", 10), tmp_path / "split")
    first.run()
    resumed = Trainer.resume(tmp_path / "split", {"train.steps": 20})
    assert resumed.global_step == 10
    resumed.run()
    assert resumed.global_step == straight.global_step == 20
    _assert_states_equal(straight.state_dict(), resumed.state_dict())
    rows = RunDir(tmp_path / "split").read_metrics()
    assert [r["step"] for r in rows] == list(range(1, 21))


def test_run_folder_holds_config_metrics_samples_checkpoint(tiny_config, tmp_path):
    from ganstudio.config import RunConfig

    config = tiny_config.updated("train.steps", 10)
    seen = []
    Trainer(config, tmp_path / "run").run(callbacks=[seen.append])
    run = RunDir(tmp_path / "run")
    assert RunConfig.load(run.config_path) == config
    rows = run.read_metrics()
    assert len(rows) == 10
    for key in ("step", "epoch", "loss_d", "loss_g", "d_real", "d_fake", "grad_norm_d", "grad_norm_g",
                "lr_d", "lr_g", "images_per_s", "wall_time"):
        assert key in rows[-1]
    assert sorted(p.name for p in run.samples_dir.iterdir()) == \
        ["index.jsonl", "step_000000.png", "step_000005.png", "step_000010.png"]
    assert run.last_checkpoint.is_file()
    assert checkpoint.load(run.last_checkpoint)["step"] == 10
    kinds = {type(e).__name__ for e in seen}
    assert {"StepStats", "Samples", "CheckpointSaved", "RunFinished"} <= kinds
    samples = [e for e in seen if isinstance(e, Samples)]
    assert samples[-1].images.shape == (16, 28, 28, 1)


def test_nan_is_rolled_back_and_training_goes_on(tiny_config):
    config = tiny_config.updated("train.steps", 12)
    trainer = Trainer(config)
    seen = []

    def poison(event):
        if isinstance(event, StepStats) and event.step == 6 and not any(isinstance(e, TrainWarning) for e in seen):
            with torch.no_grad():
                next(trainer.g.parameters()).fill_(float("nan"))
        seen.append(event)

    trainer.run(callbacks=[poison])
    warnings = [e for e in seen if isinstance(e, TrainWarning)]
    assert len(warnings) == 1 and warnings[0].kind == "nan"
    assert "rolled back to step 6" in warnings[0].message
    assert trainer.global_step == 12
    assert all(torch.isfinite(p).all() for p in trainer.g.parameters())
    assert trainer.config.optim.lr_g == pytest.approx(tiny_config.optim.lr_g * 0.5)
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(tiny_config.optim.lr_g * 0.5)
    assert all(math.isfinite(e.loss_g) for e in seen if isinstance(e, StepStats))


def test_persistent_nan_stops_with_error_and_keeps_last_checkpoint(tiny_config, tmp_path, monkeypatch):
    config = tiny_config.with_overrides(["train.steps=30", "train.nan_max_rollbacks=2"])
    trainer = Trainer(config, tmp_path / "run")
    original = trainer.strategy.train_step

    def broken(state, next_batch, kind="both"):
        stats = original(state, next_batch, kind)
        if trainer.global_step >= 7:
            stats["loss_g"] = stats["loss_g"] * float("nan")
        return stats

    monkeypatch.setattr(trainer.strategy, "train_step", broken)
    with pytest.raises(TrainingError, match="diverged"):
        trainer.run()
    # the checkpoint written at step 5 survives, loadable, and it is finite
    payload = checkpoint.load(RunDir(tmp_path / "run").last_checkpoint)
    assert payload["step"] == 5
    assert all(torch.isfinite(t).all() for t in payload["state"]["g"].values() if t.is_floating_point())


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = marker
    path = tmp_path / "checkpoints" / "last.pt"
    path.parent.mkdir()
    torch.save({"format": "ganstudio.checkpoint", "payload": evil}, path)
    with pytest.raises(CheckpointError, match="refused"):
        Trainer.resume(tmp_path)
    assert not marker.exists()
    with open(path, "wb") as f:  # a plain pickle, not even a torch zip file
        pickle.dump(evil, f)
    with pytest.raises(CheckpointError):
        checkpoint.load(path)
    assert not marker.exists()


def test_foreign_and_incompatible_checkpoints_are_refused(tiny_config, tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a ganstudio checkpoint"):
        checkpoint.load(path)
    trainer = Trainer(tiny_config)
    trainer.save_checkpoint(path)
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="format 99"):
        checkpoint.load(path)
    for junk in (b"garbage", b"\x80\x02garbage", b""):
        path.write_bytes(junk)
        with pytest.raises(CheckpointError, match="truncated or not a checkpoint"):
            checkpoint.load(path)


def test_full_disk_keeps_previous_checkpoint(tiny_config, tmp_path, monkeypatch):
    import errno

    trainer = Trainer(tiny_config.updated("train.steps", 5), tmp_path / "run")
    trainer.run()
    last = RunDir(tmp_path / "run").last_checkpoint
    before = last.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    resumed = Trainer.resume(tmp_path / "run", {"train.steps": 10})
    seen = []
    with pytest.raises(CheckpointError, match="No space left.*previous checkpoint is intact"):
        resumed.run(callbacks=[seen.append])
    assert any(isinstance(e, TrainWarning) and e.kind == "checkpoint" for e in seen)  # the periodic one at 10
    assert last.read_bytes() == before
    assert [p.name for p in last.parent.iterdir()] == ["last.pt"]  # no temp files left behind


def test_tensorboard_events_are_written(tiny_config, tmp_path):
    pytest.importorskip("tensorboard")
    Trainer(tiny_config.with_overrides(["train.steps=3", "train.tensorboard=true"]), tmp_path / "run").run()
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_cuda_request_without_cuda_is_a_clear_error(tiny_config):
    from ganstudio.config import ConfigError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="no CUDA device"):
        Trainer(tiny_config.updated("train.device", "cuda"))


def test_ema_generator_lags_the_raw_one_and_is_what_samples_use(tiny_config):
    trainer = Trainer(tiny_config.updated("train.ema", 0.9))
    start = _params(trainer.g)
    for _ in range(20):
        trainer.step()
    raw, ema = _params(trainer.g), _params(trainer.g_ema)
    moved_raw = sum((r - s).norm() for r, s in zip(raw, start))
    moved_ema = sum((e - s).norm() for e, s in zip(ema, start))
    assert any(not torch.equal(r, e) for r, e in zip(raw, ema))
    assert 0 < moved_ema < moved_raw  # an average of the path so far: behind the raw weights
    assert trainer.sampler is trainer.g_ema
    with torch.no_grad():
        expected = trainer.g_ema.eval()(trainer.fixed_noise)
    np.testing.assert_array_equal(trainer.sample(), to_uint8(expected))


def test_exports_load_the_ema_generator(tiny_config, tmp_path):
    from ganstudio.engine.inference import load_generator

    trainer = Trainer(tiny_config.with_overrides(["train.ema=0.9", "train.steps=6"]), tmp_path / "run")
    trainer.run()
    _, g = load_generator(tmp_path / "run")
    for loaded, ema in zip(g.parameters(), trainer.g_ema.parameters()):
        assert torch.equal(loaded, ema)
