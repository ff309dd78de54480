"""The parts of DDP training that need no second process: model.g_norm, data shards, the batch check,
per-rank checkpoint states, the --nproc argument, and a single process staying as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganstudio.config import ConfigError, RunConfig, load_preset
from ganstudio.data.base import ImageSet
from ganstudio.data.batches import TensorBatches, _EpochBatchSampler
from ganstudio.engine import distributed
from ganstudio.models import build_models
from ganstudio.train_launch import rank_argv


@pytest.mark.parametrize("arch,size", [("mlp", 28), ("dcgan", 32), ("resnet", 32)])
def test_g_norm_none_leaves_no_batch_norm_in_g(arch, size):
    def norms(g_norm: str) -> int:
        cfg = RunConfig.model_validate({"model": {"arch": arch, "g_width": 8, "d_width": 8, "g_norm": g_norm},
                                        "data": {"image_size": size}}).model
        g, _ = build_models(cfg, image_size=size, channels=1)
        return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in g.modules())

    assert norms("batch") > 0
    assert norms("none") == 0


def test_g_norm_from_the_cli_form_and_refused_values():
    config = load_preset("mlp-gan", {"model.g_norm": "none", "model.d_norm": "none", "model.d_dropout": 0})
    assert config.model.g_norm == "none"
    assert load_preset("mlp-gan").model.g_norm == "batch"  # the default: every existing run unchanged
    with pytest.raises(ConfigError, match="g_norm"):
        load_preset("mlp-gan", {"model.g_norm": "layer"})


def _batches(batch_size=8, hflip=True) -> TensorBatches:
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 1, 2, 2).contiguous()
    batches = TensorBatches(ImageSet(images, torch.arange(40), None), batch_size=batch_size, device="cpu", seed=7)
    batches.hflip = hflip
    return batches


def test_shards_together_are_the_global_batch_in_the_same_order():
    whole, first, second = _batches(), _batches(), _batches()
    first.shard(0, 2)
    second.shard(1, 2)
    for _ in range(12):  # across an epoch boundary (5 batches an epoch)
        images, labels = whole.next()
        (a, la), (b, lb) = first.next(), second.next()
        assert torch.equal(torch.cat([a, b]), images) and torch.equal(torch.cat([la, lb]), labels)
    assert first.state_dict() == whole.state_dict()  # the position is the global one


def test_streamed_shards_draw_the_same_rows():
    whole, part = _batches(), _batches()
    part.shard(1, 4)
    full, mine = iter(_EpochBatchSampler(whole, 0, 0)), iter(_EpochBatchSampler(part, 0, 0))
    for _ in range(7):
        assert next(mine) == next(full)[2:4]


def test_a_batch_that_does_not_split_is_refused():
    group = distributed.Group(0, 4, 0, "gloo", torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"train.batch_size = 30 does not divide by the 4 processes"):
        distributed.check_batch(30, group)
    distributed.check_batch(32, group)
    distributed.check_batch(30, None)


def test_each_rank_takes_its_own_random_states_and_another_world_size_is_noted():
    state = {"rng": "rank0", "noise_rng": "n0", "world_size": 2,
             "ranks": [{"rng": "rank0", "noise_rng": "n0"}, {"rng": "rank1", "noise_rng": "n1"}]}
    group = distributed.Group(1, 2, 1, "gloo", torch.device("cpu"))
    own, notice = distributed.own_rank(state, group)
    assert (own["rng"], own["noise_rng"], notice) == ("rank1", "n1", None)
    own, notice = distributed.own_rank(state, None)
    assert own["rng"] == "rank0" and "written by 2 process(es) and this run has 1" in notice
    assert distributed.own_rank({"rng": "x"}, None) == ({"rng": "x"}, None)  # a single-process checkpoint


def test_nproc_is_dropped_from_the_command_each_rank_runs():
    assert rank_argv(["train", "--nproc", "2", "--steps", "3", "--nproc=4"]) == ["train", "--steps", "3"]
    assert rank_argv(["train", "--nnodes", "1:2", "--rdzv-endpoint=h:1", "--rdzv-timeout", "9", "--max-restarts", "1",
                      "--run-dir", "r"]) == ["train", "--run-dir", "r"]


def test_a_single_process_joins_no_group(tiny_config):
    from ganstudio.engine import Trainer

    trainer = Trainer(tiny_config)
    assert trainer.group is None and distributed.current() is None
    assert trainer.state.g is trainer.g and trainer.state.world_size == 1  # no DDP wrapper
    assert "world_size" not in trainer.state_dict()  # single-process checkpoints are as they were
