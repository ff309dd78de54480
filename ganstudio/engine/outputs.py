"""What the training loop writes and tells: sample grids, metrics rows, config.toml, evaluations and
checkpoints, each through ``_write`` so that a full disk is a warning naming the file and training goes on;
and the generator snapshot the studio's latent explorer asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ganstudio.engine.checkpoint import CheckpointError
from ganstudio.engine.events import CheckpointSaved, EvalResult, EvalStarted, Samples, TrainWarning


class OutputsMixin:
    """Part of ``loop.TrainingLoop``: uses its trainer ``t``, ``group``, ``joins``, ``failing``, ``said``,
    ``diagnostics``, ``saved_config``/``saved_step``, ``emit`` and ``_report``."""

    def _generator_snapshot(self) -> None:
        """The sampling G's weights, copied to the CPU, for the studio's latent explorer (a copy of a few MB
        at most, and no device sync beyond it; nothing is written to the run folder)."""
        from ganstudio.engine.events import GeneratorSnapshot

        t = self.t
        state = {k: v.detach().to("cpu", copy=True) for k, v in t.sampler.state_dict().items()}
        self.emit(GeneratorSnapshot(t.global_step, t.config, state, getattr(t, "g_ema", None) is not None))

    def _sample(self) -> None:
        if not self._report():
            return
        t = self.t
        images, row_classes = t.sample(), t.grid_row_classes()
        path = pairs = pairs_path = None
        if t.run_dir:  # a full disk loses this grid, with a warning naming it; training goes on
            path = self._write("grid", lambda: t.run_dir.write_grid(t.global_step, images, t.grid_columns,
                                                                    row_classes))
        if t.family.encoder:
            pairs = t.reconstructions()
            if t.run_dir:
                pairs_path = self._write("grid", lambda: t.run_dir.write_reconstructions(t.global_step, pairs))
        self.emit(Samples(t.global_step, images, path, t.grid_columns, pairs, pairs_path,
                          tuple(row_classes) if row_classes else None))

    # --- writing the run folder: a full disk is a warning naming the file, and training goes on ---------
    def _write(self, what: str, write: Callable[[], Any]) -> Any:
        """``write()``, or None after a warning when it failed; one warning per kind of file until it
        succeeds again (a full disk would otherwise warn at every logged step)."""
        try:
            result = write()
        except OSError as err:
            if what not in self.failing:
                self.failing.add(what)
                self.emit(TrainWarning(self.t.global_step, "disk", f"{err}; training goes on"))
            return None
        self.failing.discard(what)
        return result

    def _append_metrics(self, row: dict) -> None:
        row = {**row, "world_size": self.group.world_size if self.group else 1}  # every row says how many trained
        if self.t.run_dir:
            self._write("metrics", lambda: self.t.run_dir.append_metrics(row))

    def _write_config(self) -> None:
        self._write("config", lambda: self.t.run_dir.write_config(self.t.config))

    def _evaluate(self) -> None:
        """Score the model (eval.metrics, or reconstruction for autoencoders), keep checkpoints/best.pt by
        the family's primary metric (FID, reconstruction error), warn on mode collapse."""
        t = self.t
        if not self._report():
            return
        n = t.config.eval.num_samples
        self.emit(EvalStarted(t.global_step, n))
        # under several processes rank 0 alone evaluates (the metric's statistics need all images in one
        # place, and its features are loaded once); every rank gets the report, for best.pt and early stop
        report = self.group.from_main(lambda: t.evaluate(n)) if self.group else t.evaluate(n)
        best = t.record_score(report.metrics.get(t.family.primary_metric))
        if best and (t.run_dir or self.joins):
            self._save(t.run_dir.checkpoints_dir / "best.pt" if t.run_dir else None)  # None: joins rank 0's
        if t.run_dir:
            self._append_metrics({"step": t.global_step, "epoch": t.epoch, **report.row()})
        self.emit(EvalResult(t.global_step, report.metrics, n, report.extractor, report.seconds, best,
                             tuple(report.warnings)))
        for message in report.warnings:
            if message not in self.said:
                self.said.add(message)
                self.emit(TrainWarning(t.global_step, "eval", message))
        for warning in self.diagnostics.check_eval(t.global_step, report.diversity_ratio, report.class_share) \
                if self.diagnostics else ():
            self.emit(warning)

    def _save(self, path) -> None:
        """Write a checkpoint; a failure (a full disk) becomes a warning and training goes on."""
        t = self.t
        try:
            saved = t.save_checkpoint(path)
        except CheckpointError as err:
            self.emit(TrainWarning(t.global_step, "checkpoint", f"{err}; training goes on"))
            return
        if t.run_dir and Path(saved) == t.run_dir.last_checkpoint:
            self.saved_config, self.saved_step = t.config, t.global_step
        self.emit(CheckpointSaved(t.global_step, saved))

    def _checkpoint(self, final: bool) -> None:
        """Write checkpoints/last.pt; a failure is a warning mid-run, an error (naming the file) at the end."""
        t = self.t
        if (t.run_dir is None and not self.joins) or not self._report():
            return
        if t.run_dir is None:  # another rank: sends its random states to rank 0, which writes
            t.save_checkpoint()
            return
        if final:
            self.emit(CheckpointSaved(t.global_step, t.save_checkpoint()))
        else:
            self._save(t.run_dir.last_checkpoint)
