"""The worker forwards the loop's GeneratorSnapshot (the latent explorer's live weights) on its own signal."""

from __future__ import annotations

import torch

from ganstudio.engine import Control
from ganstudio.gui.worker import TrainWorker


def test_a_requested_snapshot_arrives_on_the_snapshotted_signal(qtbot, tiny_config, tmp_path):
    control = Control()
    control.request("snapshot")  # before the first step: the starting weights
    worker = TrainWorker(control, tmp_path / "run", tiny_config.updated("train.steps", 3))
    seen = []
    worker.snapshotted.connect(seen.append)
    with qtbot.waitSignal(worker.finished, timeout=60_000) as finished:
        worker.run()  # synchronous: the bridge alone
    assert finished.args[0].reason == "steps"
    (snapshot,) = seen
    assert snapshot.step == 0 and not snapshot.ema and snapshot.config.model.z_dim == 8
    assert all(isinstance(v, torch.Tensor) and v.device.type == "cpu" for v in snapshot.state.values())
