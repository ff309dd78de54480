"""DDP beyond the plain GAN (issue 15): the autoencoder, the VAE and WGAN-GP on two gloo ranks, torch.compile
under DDP, channels-last weights without DDP's stride warning, and train.sync_batch_norm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganstudio.config import ConfigError, RunConfig, load_preset
from ganstudio.engine import Trainer, distributed
from ganstudio.engine.state import build_state
from ddp_workers import spawn

_TINY = {"model.z_dim": 8, "model.g_width": 8, "model.d_width": 8, "data.max_images": 256,
         "train.batch_size": 32, "train.device": "cpu", "train.log_every": 2, "train.sample_every": 3,
         "train.checkpoint_every": 4, "train.num_samples": 8, "train.seed": 3, "train.steps": 4}


def _preset(name: str, **changes) -> dict:
    return load_preset(name, {**_TINY, **changes}).model_dump(mode="json")


def _equal(a: dict, b: dict) -> bool:
    # running statistics stay per rank (broadcast_buffers off, see engine/distributed.py): weights only
    keys = [k for k in a if "running" not in k and "num_batches" not in k]
    return bool(keys) and all(torch.equal(a[k], b[k]) for k in keys)


def _stride_warnings(result: dict) -> list[str]:
    return [w for w in result["python_warnings"] if "bucket view strides" in w]


# --- the families on two ranks ----------------------------------------------------------------------------
@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.parametrize("preset", ["autoencoder", "vae", "wgan-gp"])
def test_family_trains_alike_on_both_ranks_and_only_rank0_writes(tmp_path, preset):
    """The encoder families (one loss through both networks, a held-out set) and WGAN-GP (5 critic steps, a
    penalty through a double backward), channels-last as by default."""
    config = _preset(preset, **{"data.holdout": 32} if preset != "wgan-gp" else {"train.steps": 3})
    run = tmp_path / "run"
    r0, r1 = spawn(2, tmp_path / "out", config, run)
    assert r0["step"] == r1["step"] == config["train"]["steps"]
    assert _equal(r0["g"], r1["g"]) and _equal(r0["d"], r1["d"])
    assert r1["written"] == []
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "metrics.jsonl").is_file()
    assert not _stride_warnings(r0) and not _stride_warnings(r1), r0["python_warnings"]


@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.parametrize("preset,changes", [
    ("wgan-gp", {"train.steps": 3}),
    ("vae", {"model.d_norm": "none", "data.holdout": 32}),
])
def test_two_ranks_of_32_equal_one_process_of_64(tmp_path, preset, changes):
    """Random draws per image (WGAN-GP's interpolation weights, the VAE's ε) must be the single process's
    too, split by rank. Tolerance: in Adam's first steps a gradient near zero (|g| ~ eps; a WGAN critic gives
    G such gradients) turns the rounding of a sum over 2 x 32 rather than 64 into ~7e-6 of a weight; a
    different draw makes ~6e-4 (WGAN-GP) and ~8e-3 (VAE)."""
    config = _preset(preset, **{"model.g_norm": "none", "train.batch_size": 64, "train.threads": 1,
                                "train.sample_every": 100, **changes})
    r0, r1 = spawn(2, tmp_path / "out", config)
    single = Trainer(RunConfig.model_validate(config))
    single.run()
    assert r0["step"] == single.global_step == config["train"]["steps"]
    for name, ours in (("g", single.g.state_dict()), ("d", single.d.state_dict())):
        for key, value in ours.items():
            torch.testing.assert_close(r0[name][key], value, rtol=1e-5, atol=1e-5)
    assert _equal(r0["g"], r1["g"])


@pytest.mark.ddp
@pytest.mark.slow
def test_compile_under_ddp_trains_alike_on_both_ranks(tmp_path):
    config = _preset("dcgan-fashion", **{"train.compile": True, "train.steps": 3})
    r0, r1 = spawn(2, tmp_path / "out", config)
    assert r0["step"] == r1["step"] == 3
    assert _equal(r0["g"], r1["g"]) and _equal(r0["d"], r1["d"])
    for r in (r0, r1):
        assert r["compiled"] == [True, True]  # still compiled at the end: no fallback to eager
        assert not [w for w in r["warnings"] if "torch.compile" in w[2]], r["warnings"]


# --- channels-last strides --------------------------------------------------------------------------------
def test_wrap_gives_ambiguous_conv_weights_canonical_strides():
    """A weight with in_channels 1 is contiguous under channels-last strides too; DDP must see the canonical
    ones (those a double backward gives its gradient). A real channels-last weight stays as it is."""
    net = nn.Sequential(nn.Conv2d(1, 8, 4), nn.Conv2d(8, 4, 3), nn.ConvTranspose2d(4, 1, 4))
    net.to(memory_format=torch.channels_last)
    first, second, last = (m.weight for m in net)
    assert first.stride() == (16, 1, 4, 1)
    before = first.detach().clone()
    distributed._canonical_conv_strides(net)
    assert net[0].weight is first and first.stride() == (16, 16, 4, 1) and torch.equal(first, before)
    assert second.stride() == (72, 1, 24, 8)  # channels-last proper: DDP's buckets follow it
    assert last.stride() == (16, 1, 4, 1)      # a transposed conv's gradient comes channels-last


# --- train.sync_batch_norm --------------------------------------------------------------------------------
def _cuda_group() -> distributed.Group:
    return distributed.Group(rank=0, world_size=2, local_rank=0, backend="nccl", device=torch.device("cuda", 0))


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_sync_batch_norm_replaces_every_batch_norm_and_keeps_the_weights(arch):
    from ganstudio.models import build_models

    cfg = RunConfig.model_validate({"model": {"arch": arch, "g_width": 8, "d_width": 8}}).model
    for net in build_models(cfg, image_size=28, channels=1):
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.weight.uniform_()
                    m.running_mean.uniform_()
        before = {k: v.clone() for k, v in net.state_dict().items()}
        count = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
        synced = distributed.sync_batch_norm(net, _cuda_group())
        assert count and sum(isinstance(m, nn.SyncBatchNorm) for m in synced.modules()) == count
        assert not [m for m in synced.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                    and not isinstance(m, nn.SyncBatchNorm)]
        after = synced.state_dict()
        assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def test_sync_batch_norm_is_refused_on_a_cpu_group_and_ignored_by_one_process():
    config = RunConfig.model_validate({"model": {"arch": "dcgan", "g_width": 8, "d_width": 8},
                                       "train": {"sync_batch_norm": True}})
    cpu_group = distributed.Group(0, 2, 0, "gloo", torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"^train.sync_batch_norm = true needs CUDA GPUs") as err:
        build_state(config, torch.device("cpu"), cpu_group)
    assert "\n" not in str(err.value)
    state = build_state(config, torch.device("cpu"))
    assert state.notices == [distributed.SYNC_BATCH_NORM_IGNORED]
    assert not [m for m in state.d.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert build_state(config.model_copy(update={"train": config.train.model_copy(
        update={"sync_batch_norm": False})}), torch.device("cpu")).notices == []



def test_a_single_process_trainer_warns_that_it_ignores_sync_batch_norm():
    config = RunConfig.model_validate({"model": {"arch": "mlp", "g_width": 8, "d_width": 8},
                                       "data": {"max_images": 64}, "train": {"sync_batch_norm": True}})
    assert distributed.SYNC_BATCH_NORM_IGNORED in Trainer(config).warnings


# --- more processes than GPUs -----------------------------------------------------------------------------
@pytest.mark.parametrize("local_rank", [0, 3])
def test_more_processes_than_gpus_refused_alike_on_every_rank(monkeypatch, local_rank):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.setattr(distributed, "_group", None)
    for name, value in dict(RANK=local_rank, WORLD_SIZE=4, LOCAL_RANK=local_rank, LOCAL_WORLD_SIZE=4,
                            MASTER_ADDR="127.0.0.1", MASTER_PORT=1).items():
        monkeypatch.setenv(name, str(value))
    message = ("4 processes on this machine but 2 CUDA device(s): start one process per GPU (--nproc 2), or set "
               "train.device = 'cpu'")
    with pytest.raises(ConfigError) as err:
        distributed.setup("auto")
    assert str(err.value) == message
    assert distributed.current() is None


def test_cuda_without_a_gpu_is_refused_not_trained_on_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.setattr(distributed, "_group", None)
    for name, value in dict(RANK=1, WORLD_SIZE=2, LOCAL_RANK=1, LOCAL_WORLD_SIZE=2, MASTER_ADDR="127.0.0.1",
                            MASTER_PORT=1).items():
        monkeypatch.setenv(name, str(value))
    with pytest.raises(ConfigError, match=r"^train.device = 'cuda' but this machine has no CUDA device; set "):
        distributed.setup("cuda")
    assert distributed.current() is None
