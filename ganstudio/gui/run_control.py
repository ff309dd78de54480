"""What the Run menu does: start, pause, step, stop a training session, and open or forget runs.

The controller owns the training session (worker + thread) and routes its signals to the window's
widgets. It talks to the engine only through the worker's signals and the engine's Control.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QToolButton

from ganstudio.config import ConfigError, RunConfig, identity_differences, is_live, may_differ_within_run
from ganstudio.engine.runs import default_runs_root
from ganstudio.families import family_of
from ganstudio.gui import icons
from ganstudio.gui.log_view import describe_event
from ganstudio.gui.status import Eta
from ganstudio.gui.worker import RunInfo, TrainingSession, TrainWorker





class RunController(QObject):
    run_changed = Signal(object)  # the run folder shown (Path), or None after New run

    def __init__(self, window, runs_root: Path | None = None) -> None:
        super().__init__(window)
        self.w = window
        self.runs_root = Path(runs_root) if runs_root else default_runs_root()
        self.session: TrainingSession | None = None
        self.control = None
        self.run_dir: Path | None = None
        self.run_config: RunConfig | None = None
        self.device: str | None = None
        self.last_row: dict | None = None
        self.eta: Eta | None = None  # the session's ETA, from its RunInfo on
        self.following = None  # gui.follow.Following: a run another process writes, shown live
        self.job = None  # gui.job_launch.JobLaunch: the multi-process job Start launched, for the close question
        actions = window.actions
        for name, slot in (("start", self.start), ("pause", self.toggle_pause), ("stop", self.stop),
                           ("sample_now", self.sample_now), ("evaluate", self.evaluate_now)):
            actions[name].triggered.connect(slot)
        actions["step"].triggered.connect(lambda: self.step("both"))
        actions["step_d"].triggered.connect(lambda: self.step("d"))
        actions["step_g"].triggered.connect(lambda: self.step("g"))
        window.form.validity_changed.connect(self._on_validity)
        window.form.config_changed.connect(self._on_config)  # the family decides which steps exist
        window.form.live_changed.connect(self._on_live_change)
        window.latent.live_requested.connect(self.request_snapshot)  # the explorer, from the live weights

    @property
    def state(self) -> str:
        return self.w.status.state

    @property
    def busy(self) -> bool:
        """Training here, or following a run another process trains (``control`` then sends commands)."""
        return self.following is not None or (self.session is not None and self.session.running)

    # --- commands -------------------------------------------------------------------------------------
    @Slot()
    def start(self, paused: bool = False) -> None:
        if self.busy:
            return
        config = self.w.form.config()
        if config is None:
            self.w.show_error("Cannot start", "The settings are not valid:\n" + self.w.form.error_text())
            return
        if config.train.processes > 1:  # DDP: a child `ganstudio train --nproc N`, followed through its folder
            from ganstudio.gui.job_launch import start_job

            resuming = self._can_resume(config)
            start_job(self, config, paused, _resume_changes(self.run_config, config) if resuming else None)
            return
        from ganstudio.engine import Control  # light: no torch import

        self.control = Control()
        self.eta = None  # until the worker says training has begun (its RunInfo)
        if paused:
            self.control.pause()
        if self._can_resume(config):
            worker = TrainWorker(self.control, self.run_dir, None, _resume_changes(self.run_config, config))
            self.w.log.add(f"continuing {self.run_dir}")
        else:
            from ganstudio.engine.rundir import RunDir  # noqa: PLC0415 - only the folder naming

            self.run_dir = RunDir.new(self.runs_root, config.name).path
            self.run_config = config
            self.w.plots.clear()
            self.w.metrics.clear()
            self.w.status.clear_warnings()
            self.w.warnings.clear()
            self.w.gallery.clear()
            worker = TrainWorker(self.control, self.run_dir, config)
            self.w.log.add(f"new run in {self.run_dir}")
        self._connect(worker)
        self.session = TrainingSession(worker)
        self.session.start()
        self._set_state("paused" if paused else "running")
        self.run_changed.emit(self.run_dir)

    @Slot()
    def toggle_pause(self) -> None:
        if not self.busy:
            return
        if self.control.paused:
            self.control.resume()  # the engine marks it at the step it resumes from (_on_marked)
            if self.eta is not None:
                self.eta.resume()
            self._set_state("running")
        else:
            self.control.pause()  # the engine marks it at the step it really stops at (_on_marked)
            if self.eta is not None:
                self.eta.pause()
            self._set_state("paused")

    def step(self, kind: str) -> None:
        if not self.busy:
            self.start(paused=True)
            if not self.busy:
                return
        elif not self.control.paused:
            self.toggle_pause()
        self.control.step_once(kind)

    @Slot()
    def stop(self) -> None:
        if self.busy:
            self.control.stop()
            self.w.log.add(f"stopping{self._what_stopping_does()}")

    @property
    def starting(self) -> bool:
        """Training here has not begun: the data is still read or the networks built, and a stop saves nothing."""
        return self.following is None and self.session is not None and self.eta is None

    def _what_stopping_does(self) -> str:
        if self.starting:
            return " the start-up: nothing has been trained, so nothing is saved"
        return ": finishing the step and saving a checkpoint"

    @Slot()
    def sample_now(self) -> None:
        if self.busy:
            self.control.request("sample")

    @Slot()
    def evaluate_now(self) -> None:
        if self.busy:
            self.control.request("evaluate")

    def request_checkpoint(self) -> None:
        if self.busy:
            self.control.request("checkpoint")

    @Slot()
    def request_snapshot(self) -> None:
        """G's current weights for the latent explorer: the loop answers between two steps (worker.snapshotted)."""
        if self.busy:
            self.control.request("snapshot")

    def shutdown(self) -> None:
        """Stop training, let the engine save its checkpoint, and join the thread (at most a minute, the
        window painting meanwhile; a start-up still reading data stops within about one file)."""
        if self.following is not None:
            self.following.leave()  # a followed run goes on in its own process
        if self.session is not None and self.busy:
            self.w.status.showMessage(f"stopping{self._what_stopping_does()}…")
            self.w.log.add(f"closing{self._what_stopping_does()}")
        if self.session is not None and not self.session.stop():
            self.w.log.add("training did not stop within a minute; closing without waiting for it", "error")

    # --- runs -----------------------------------------------------------------------------------------
    def open_run(self, folder: Path) -> None:
        """Show a run folder's history; Start then continues it. Everything is read before the window
        changes, so a folder that cannot be read leaves the window as it was, with a dialog saying why.
        Damaged metrics rows are skipped (and counted in the log); the rest of the run opens."""
        from ganstudio.engine.rundir import RunDir
        from ganstudio.gui.follow import follow_run, unreadable_config, writer_elsewhere

        if self.following is not None:
            self.following.leave()
        if self.busy:
            self.w.show_error("Training is running", "Stop training before opening another run.")
            return
        if writer_elsewhere(folder):  # another process writes it: show it live, do not take it over
            follow_run(self, folder)
            return
        run = RunDir(folder)
        try:
            config = RunConfig.load(run.config_path)
            rows = run.read_metrics()
            events = run.read_events()
            grids = run.sample_index()
            resumable = run.last_checkpoint.is_file()
        except ConfigError as err:
            self.w.show_error(*unreadable_config(run.path, err))
            return
        except (OSError, ValueError) as err:  # unreadable files (permissions, a folder in place of a file)
            self.w.show_error("Cannot open the run", f"{folder} could not be read:\n{err}")
            return
        self.run_dir, self.run_config = run.path, config
        self.w.form.set_config(config)
        self.w.plots.load_rows(rows)
        self.w.plots.load_events(events)
        self.w.metrics.load_rows(rows)
        self.w.gallery.load_run(grids)
        self.w.gallery.set_class_names(_class_names(config))
        self.last_row = rows[-1] if rows else None
        self.w.status.clear_run()
        if self.last_row:
            self.w.status.show_row(self.last_row, None)
        self.w.log.add(f"opened {folder}: {len(rows)} logged steps, {self.w.gallery.snapshot_count()} sample "
                       f"grids; " + ("Start continues it" if resumable else "no checkpoint, so Start begins anew"))
        if rows.skipped:
            self.w.log.add(f"{run.metrics_path}: {rows.skipped} damaged rows skipped (left in the file)", "warning")
        self._set_state("stopped")
        self.run_changed.emit(self.run_dir)

    def forget_run(self) -> None:
        if self.following is not None:
            self.following.leave()
        self.run_dir = self.run_config = self.last_row = None
        self.w.plots.clear()
        self.w.metrics.clear()
        self.w.gallery.clear()
        self.w.status.clear_run()
        self._set_state("idle")
        self.w.log.add("new run: Start creates a new run folder")
        self.run_changed.emit(None)

    def _can_resume(self, config: RunConfig) -> bool:
        from ganstudio.engine.rundir import RunDir

        if self.run_dir is None or not RunDir(self.run_dir).last_checkpoint.is_file():
            return False
        differing = identity_differences(self.run_config, config)
        if differing:
            self.w.log.add("settings that cannot change within a run differ from the opened run "
                           f"({', '.join(key for key, _, _ in differing)}): starting a new run", "warning")
            return False
        return True

    # --- worker signals -------------------------------------------------------------------------------
    def _connect(self, worker: TrainWorker) -> None:
        worker.started_run.connect(self._on_started)
        worker.progressed.connect(self._on_progress)
        worker.stepped.connect(self._on_stepped)
        worker.marked.connect(self._on_marked)
        worker.preparing.connect(self._on_preparing)
        worker.downloading.connect(self._on_downloading)
        worker.sampled.connect(self._on_sampled)
        worker.snapshotted.connect(self.w.latent.show_snapshot)
        worker.warned.connect(self._on_warning)
        worker.checkpointed.connect(self._on_checkpoint)
        worker.eval_started.connect(self._on_eval_started)
        worker.evaluated.connect(self._on_evaluated)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)

    @Slot(object)
    def _on_started(self, info: RunInfo) -> None:
        self.device = info.device
        self.run_config = info.config
        self.eta = Eta(info.config, info.elapsed)
        self.w.status.clearMessage()  # the start's "downloading…", if any
        if self.control is not None and self.control.paused:
            self.eta.pause()
        self.w.form.set_config(info.config)
        self.w.gallery.set_class_names(_class_names(info.config))
        self.w.status.set_device(info.device)
        self.w.log.add(f"training on {info.device} from step {info.step}")
        for warning in info.warnings:
            self.w.log.add(warning, "warning")

    @Slot(object)
    def _on_progress(self, rows: list[dict]) -> None:
        """Logged rows (every ``log_every`` steps): the plots, and the status bar's step and speed."""
        self.w.plots.append(rows)  # redrawn from the plots' timer, not here
        self.last_row = rows[-1]
        self.w.status.note_row()
        eta = self.eta.row(self.last_row) if self.eta is not None else None
        self.w.status.show_progress(self.last_row["step"], self.last_row.get("epoch", 0),
                                    self.eta.images_per_s if self.eta else self.last_row.get("images_per_s"), eta)

    @Slot(int, int)
    def _on_preparing(self, done: int, total: int) -> None:
        """A folder's cache is being built (once per folder and settings): say how far it is."""
        self.w.status.showMessage(f"preparing the images: {done:,} of {total:,}" if done < total else "")

    @Slot(str, str)
    def _on_downloading(self, source: str, folder: str) -> None:
        """A torchvision dataset is fetched before the first step (once: it stays in the cache folder)."""
        self.w.log.add(f"downloading {source} into {folder}: once, it is kept there; Stop cancels it")
        self.w.status.showMessage(f"downloading {source}…")

    @Slot(object)
    def _on_stepped(self, progress) -> None:
        """The step count between logged rows (~10 a second): the status bar only."""
        if self.eta is None:
            return  # RunInfo arrives first; this guards a worker wired without it (tests)
        eta = self.eta.progress(progress.step, progress.steps_per_s, progress.images_per_s)
        self.w.status.show_progress(progress.step, progress.epoch, self.eta.images_per_s, eta)

    @Slot(object)
    def _on_marked(self, event) -> None:
        """An event at its exact step: a marker (or a single step's point) on the plots; pause, resume, stop
        and single steps also in the log (changes and rollbacks have their own lines)."""
        self.w.plots.add_event(event)
        if event.kind not in ("changed", "rollback"):
            self.w.log.add(describe_event(event), step=event.step)

    @Slot(object)
    def _on_sampled(self, samples) -> None:
        self.w.gallery.add_samples(samples)

    @Slot(object)
    def _on_warning(self, warning) -> None:
        self.w.log.add(warning.message, "warning", warning.step)
        self.w.status.add_warning(warning.message)
        self.w.warnings.add(warning)  # the badge that lists them with their hints

    @Slot(object)
    def _on_checkpoint(self, saved) -> None:
        self.w.log.add(f"checkpoint saved: {saved.path.name}", step=saved.step)
        dialog = getattr(self.w, "export_dialog", None)
        if dialog is not None and dialog.isVisible():
            dialog.refresh_checkpoint()  # the export dialog shows which step it exports from

    @Slot(object)
    def _on_eval_started(self, started) -> None:
        self.w.status.showMessage(f"evaluating {started.num_samples} samples…")
        self.w.log.add(f"evaluating {started.num_samples} generated images", step=started.step)

    @Slot(object)
    def _on_evaluated(self, result) -> None:
        row = {"step": result.step, **result.metrics, "eval_samples": result.num_samples}
        self.w.metrics.append([row])
        self.w.status.clearMessage()
        primary = "FID"
        if self.run_config is not None and family_of(self.run_config).primary_metric == "recon_mse":
            primary = "reconstruction error"
        best = f"; best {primary} so far, saved checkpoints/best.pt" if result.best else ""
        self.w.log.add(f"{self.w.metrics.summary.text()} ({result.extractor} features, "
                       f"{result.seconds:.1f} s){best}", step=result.step)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._set_state("error")
        self.w.show_error("Training stopped with an error", message)

    @Slot(object)
    def _on_finished(self, finished) -> None:
        from ganstudio.gui import threads

        threads.stop_thread(self.session.thread if self.session else None)
        self.w.status.clearMessage()  # "downloading…" or "preparing the images…" of a start that ended
        if finished is not None:
            self.w.log.add(f"training ended ({finished.reason}) at step {finished.step:,}; run folder "
                           f"{finished.run_dir}")
        if self.state != "error":
            self._set_state("stopped")
        self.update_actions()

    @Slot(bool, str)
    def _on_validity(self, valid: bool, message: str) -> None:
        self.update_actions()

    @Slot(object)
    def _on_config(self, _config) -> None:
        self.update_actions()

    @Slot(str, object)
    def _on_live_change(self, key: str, value) -> None:
        if self.busy and is_live(key):
            self.control.set_hparam(key, value)  # marked on the plots at the step it takes effect (_on_marked)
            self.w.log.add(f"{key} set to {value} (from the next step)")

    # --- state ----------------------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.w.status.set_state(state)
        self.w.form.set_running(state in ("running", "paused"))
        self.w.preview.set_running(state in ("running", "paused"))
        self.w.latent.set_live(state in ("running", "paused"))
        self.update_actions()

    def update_actions(self) -> None:
        a, busy = self.w.actions, self.busy or self.state in ("running", "paused")
        a["start"].setEnabled(not busy and self.w.form.is_valid())
        a["pause"].setEnabled(busy)
        paused = self.state == "paused"
        a["pause"].setText("&Resume" if paused else "&Pause")
        a["pause"].setIcon(icons.icon("resume" if paused else "pause"))
        button = self.w.findChild(QToolButton, "toolbar_pause")
        if button is not None:
            button.setAccessibleName("Resume" if paused else "Pause")
        config = self.run_config if busy else self.w.form.config()
        adversarial = config is None or family_of(config).adversarial  # an autoencoder has no D or G step
        for name in ("step", "step_d", "step_g"):
            can = self.state == "paused" or (not busy and self.w.form.is_valid())
            a[name].setEnabled(can and (adversarial or name == "step"))
        a["stop"].setEnabled(busy)
        a["save_checkpoint"].setEnabled(busy)
        a["sample_now"].setEnabled(busy)
        a["evaluate"].setEnabled(busy)
        a["export"].setEnabled(self.run_dir is not None)
        a["neighbours"].setEnabled(self.run_dir is not None)
        here = self.session is not None and self.session.running  # a followed run may be left at any time
        a["new_run"].setEnabled(not here)
        a["open_run"].setEnabled(not here)
        from ganstudio.gui.readiness import explain_actions  # noqa: PLC0415 - kept beside its one call

        explain_actions(self)  # an invalid form or torch still loading: off, with the reason shown


def _class_names(config: RunConfig) -> list[str]:
    """A conditional run's class names for its grid rows (no torch: a folder listing at most)."""
    from ganstudio.export_checks import class_names

    return class_names(config) if family_of(config).conditional else []


def _resume_changes(old: RunConfig, new: RunConfig) -> dict[str, object]:
    """``{dotted key: value}`` for the fields that may change within a run (live ones, budgets, where it
    runs: ``config.may_differ_within_run``) that the form changed since the run's config."""
    changes = {}
    for section, fields in new.model_dump(mode="json").items():
        if not isinstance(fields, dict):
            continue
        previous = getattr(old, section).model_dump(mode="json")
        for name, value in fields.items():
            key = f"{section}.{name}"
            if may_differ_within_run(key) and value != previous.get(name):
                changes[key] = value
    return changes
