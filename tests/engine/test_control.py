"""The loop driven from another thread, as the studio's worker does it."""

import threading
import time

import pytest

from ganstudio.engine import Control, RunDir, StepStats, Trainer
from ganstudio.engine.events import RunEvent


def _wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@pytest.fixture
def running(tiny_config, tmp_path):
    """A Trainer running in a thread; yields (trainer, control, events, thread)."""
    trainer = Trainer(tiny_config.updated("train.sample_every", 1000), tmp_path / "run")
    control, events = Control(), []
    thread = threading.Thread(target=trainer.run, args=(control, [events.append]), daemon=True)
    thread.start()
    yield trainer, control, events, thread
    control.stop()
    thread.join(30)
    assert not thread.is_alive()


def _pause(trainer, control, at_least=1):
    _wait_until(lambda: trainer.global_step >= at_least)
    control.pause()
    assert control.wait_idle(30)
    return trainer.global_step


def test_pause_stops_steps_resume_continues(running):
    trainer, control, events, _ = running
    frozen = _pause(trainer, control, 2)
    time.sleep(0.3)  # a window in which a running loop would take several steps
    assert trainer.global_step == frozen
    stats = [e for e in events if isinstance(e, StepStats)]
    assert stats[-1].step == frozen  # figures flushed on pause
    assert isinstance(events[-1], RunEvent) and (events[-1].step, events[-1].kind) == (frozen, "paused")
    control.resume()
    _wait_until(lambda: trainer.global_step >= frozen + 2)


def test_step_once_advances_exactly_one_step(running):
    trainer, control, events, _ = running
    before = _pause(trainer, control)
    control.step_once()
    assert control.wait_idle(30)
    assert trainer.global_step == before + 1
    assert events[-1].step == before + 1
    control.step_once("d")  # D only: no generator step
    assert control.wait_idle(30)
    assert trainer.global_step == before + 1
    control.step_once("g")
    assert control.wait_idle(30)
    assert trainer.global_step == before + 2


def test_stop_ends_run_and_writes_checkpoint(running):
    trainer, control, events, thread = running
    _wait_until(lambda: trainer.global_step >= 2)
    control.stop()
    thread.join(30)
    assert not thread.is_alive()
    assert events[-1].reason == "stopped"
    assert RunDir(trainer.run_dir.path).last_checkpoint.is_file()


def test_live_lr_change_shows_in_metrics(running):
    trainer, control, events, thread = running
    _wait_until(lambda: trainer.global_step >= 2)
    control.set_hparam("optim.lr_g", 1e-3)
    _wait_until(lambda: any(isinstance(e, StepStats) and e.lr_g == 1e-3 for e in events))
    control.stop()
    thread.join(30)
    rows = trainer.run_dir.read_metrics()
    assert rows[0]["lr_g"] == 2e-4 and rows[-1]["lr_g"] == 1e-3
    assert "lr_g = 0.001" in trainer.run_dir.config_path.read_text()


def test_live_change_applies_while_paused(running):
    trainer, control, _, _ = running
    _pause(trainer, control)
    control.set_hparam("optim.lr_d", 5e-4)
    _wait_until(lambda: trainer.opt_d.param_groups[0]["lr"] == 5e-4)


def test_a_change_sent_with_the_resume_applies_from_the_next_step(running):
    """An edit, then Resume at once (the studio's order): the first step after the pause already uses it."""
    trainer, control, events, _ = running
    frozen = _pause(trainer, control)
    with control._cond:  # both before the loop wakes: the race a quick click after an edit can win
        control.set_hparam("optim.lr_g", 1e-3)
        control.resume()
    _wait_until(lambda: any(isinstance(e, StepStats) and e.step > frozen for e in events))
    first = next(e for e in events if isinstance(e, StepStats) and e.step > frozen)
    assert (first.step, first.lr_g) == (frozen + 1, 1e-3)


def test_locked_field_change_is_refused_with_warning(running):
    trainer, control, events, _ = running
    control.set_hparam("model.arch", "mlp")
    _wait_until(lambda: any(getattr(e, "kind", None) == "config" for e in events))
    assert trainer.config.model.arch == "dcgan"


def test_rapid_pause_resume_toggles_do_not_deadlock(running):
    trainer, control, _, thread = running
    for i in range(200):
        control.pause() if i % 2 == 0 else control.resume()
    control.resume()
    start = trainer.global_step
    _wait_until(lambda: trainer.global_step > start)
    control.stop()
    thread.join(30)
    assert not thread.is_alive()


def test_paused_time_is_not_training_time(tiny_config):
    trainer = Trainer(tiny_config.updated("train.max_time", 1.0))
    control = Control()
    control.pause()
    thread = threading.Thread(target=trainer.run, args=(control,), daemon=True)
    thread.start()
    assert control.wait_idle(30)
    time.sleep(1.5)  # longer than the time budget, all of it paused
    assert thread.is_alive() and trainer.global_step == 0
    control.resume()
    thread.join(60)
    assert not thread.is_alive() and trainer.global_step > 0


def test_sample_request_while_paused_writes_a_grid(running):
    from ganstudio.engine import Samples

    trainer, control, events, _ = running
    step = _pause(trainer, control)
    control.request("sample")
    assert control.wait_idle(30)
    assert any(isinstance(e, Samples) and e.step == step for e in events)
    assert trainer.run_dir.sample_path(step).is_file()


def test_an_interrupt_inside_a_step_saves_nothing(tiny_config, tmp_path):
    """Nothing torn: a KeyboardInterrupt landing inside a step (after part of it ran) leaves no checkpoint
    of that half-made state; the loop re-raises it."""
    import pytest

    from ganstudio.engine import RunDir, Trainer

    trainer = Trainer(tiny_config, tmp_path / "run")
    step = trainer.train_step

    def torn(kind="both"):
        step(kind)  # the step's updates happen, then the interrupt lands before it is complete
        if trainer.global_step == 3:
            raise KeyboardInterrupt
        return step(kind)

    trainer.train_step = torn
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert not RunDir(tmp_path / "run").last_checkpoint.exists()


def test_an_interrupt_between_steps_saves_that_step(tiny_config, tmp_path):
    """Nothing lost: a KeyboardInterrupt at a whole point (a callback after a logged step) still saves the
    run at that step, as a first Ctrl-C in a notebook always has."""
    import pytest

    from ganstudio.engine import RunDir, StepStats, Trainer, checkpoint

    def interrupt(event):
        if isinstance(event, StepStats) and event.step == 3:
            raise KeyboardInterrupt

    trainer = Trainer(tiny_config, tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        trainer.run(callbacks=[interrupt])
    assert checkpoint.load(RunDir(tmp_path / "run").last_checkpoint)["step"] == 3
