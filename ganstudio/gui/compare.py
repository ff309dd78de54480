"""Compare 2–6 runs, read from their folders: curves overlaid (one colour per run), sample grids side by
side under one step slider, and a table of the config fields that differ with each run's final and best
figures. Runs of different families or sizes are compared where that means something, and the view says
what it left out. Runs still being written refresh while the view is open (a timer reads what was added;
nothing takes a run's lock). Torch-free: comparing runs only reads files.

``open_compare(window, folders)`` opens one as a window of its own; ``CompareView(folders)`` is the widget.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QMessageBox, QTableWidget, QTableWidgetItem,
                               QTabWidget, QVBoxLayout, QWidget)

from ganstudio.gui.compare_data import (EVAL_LABELS, MAX_RUNS, CompareRun, differing_keys, eval_keys, format_seconds,
                                        format_value, key_label, left_out, training_keys)
from ganstudio.gui.compare_grids import CompareGrids
from ganstudio.gui.compare_plots import CompareCurves, run_colour
from ganstudio.gui.grid_view import named

REFRESH_MS = 1000  # a live run logs a few rows a second at most; reading them once a second is enough
MIN_RUNS = 2


class CompareView(QWidget):
    """The comparison of the runs in ``folders`` (1 to MAX_RUNS; the Compare action asks for 2 or more)."""

    def __init__(self, folders: list[Path], parent=None) -> None:
        super().__init__(parent)
        if not 1 <= len(folders) <= MAX_RUNS:
            raise ValueError(f"compare takes 1 to {MAX_RUNS} run folders, not {len(folders)}")
        self.setObjectName("compare_view")
        self.setAccessibleName("Compare runs")
        self.runs = [CompareRun.open(folder) for folder in folders]
        self.legend = named(QLabel(), "compare_legend", "Runs compared")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.notes = named(QLabel(), "compare_notes", "What is left out")
        self.notes.setWordWrap(True)
        self.notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.curves = CompareCurves()
        self.grids = CompareGrids()
        self.table = named(QTableWidget(), "compare_table", "Differences and results")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.tabs = named(QTabWidget(), "compare_tabs", "Compare views")
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(self.grids, "Samples")
        self.tabs.addTab(self.table, "Differences")
        layout = QVBoxLayout(self)
        layout.addWidget(self.legend)
        layout.addWidget(self.notes)
        layout.addWidget(self.tabs, 1)
        self.curves.set_runs(self.runs)
        self.grids.set_runs(self.runs)
        self._update_text()
        self._fill_table()
        self.timer = QTimer(self)
        self.timer.setObjectName("compare_refresh_timer")
        self.timer.timeout.connect(self.refresh)
        self.timer.start(REFRESH_MS)
        self.setWindowTitle("Compare " + ", ".join(run.name for run in self.runs))

    @Slot()
    def refresh(self) -> bool:
        """Read what live writers added; redraw only when something changed. Whether anything did."""
        changed = {i for i, run in enumerate(self.runs) if run.refresh()}
        if not changed:
            return False
        self.curves.refresh(only=changed)
        self.grids.refresh()
        self._update_text()
        self._fill_table()
        return True

    # --- the table --------------------------------------------------------------------------------
    def table_rows(self) -> list[tuple[str, list[str]]]:
        """(row heading, one cell per run): the differing config fields, then state, steps and time,
        the final training figures and the best evaluated ones."""
        runs = self.runs
        rows = [(key, [format_value(run.flat.get(key)) for run in runs]) for key in differing_keys(runs)]
        rows.append(("state", [run.state or "—" for run in runs]))
        rows.append(("last step", [format_value(run.last_step()) for run in runs]))
        rows.append(("training time", [format_seconds(run.training_time()) for run in runs]))
        for key in training_keys(runs):
            rows.append((f"final {key_label(runs, key)}", [format_value(run.final(key)) for run in runs]))
        for key in eval_keys(runs):
            cells = []
            for run in runs:
                best = run.best(key)
                cells.append(f"{format_value(best[0])} (step {best[1]:,})" if best else "—")
            rows.append((f"best {EVAL_LABELS[key]}", cells))
        return rows

    def config_rows(self) -> list[str]:
        """The config fields the table lists (those that differ between the runs)."""
        return differing_keys(self.runs)

    def _fill_table(self) -> None:
        rows = self.table_rows()
        self.table.setColumnCount(len(self.runs))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels([run.name for run in self.runs])
        self.table.setVerticalHeaderLabels([heading for heading, _ in rows])
        for c, run in enumerate(self.runs):
            header = self.table.horizontalHeaderItem(c)
            header.setForeground(Qt.GlobalColor.white)
            header.setBackground(QColor(run_colour(c)))
            header.setToolTip(str(run.folder))
        for r, (_heading, cells) in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if text == "—":
                    item.setToolTip("not in this run")
                self.table.setItem(r, c, item)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        if not differing_keys(self.runs):
            self.table.setToolTip("The runs' configs are the same (apart from their names)")

    # --- legend and notes -------------------------------------------------------------------------
    def _update_text(self) -> None:
        parts = []
        for i, run in enumerate(self.runs):
            what = " · ".join(str(v) for v in (run.family, run.flat.get("model.arch"), run.state) if v)
            parts.append(f"<span style='color:{run_colour(i)}; font-size:14pt'>■</span> <b>{run.name}</b>"
                         f"{f' ({what})' if what else ''}")
        self.legend.setText("&nbsp;&nbsp;&nbsp;".join(parts))
        self.notes.setText("\n".join(self.note_lines()))
        self.notes.setVisible(bool(self.note_lines()))

    def note_lines(self) -> list[str]:
        """What the view left out, and what is wrong with a run's folder, in words."""
        lines = [f"Left out: {note}" for note in left_out(self.runs)]
        lines += [f"{run.name}: {note}" for run in self.runs for note in run.notes()]
        return lines

    def closeEvent(self, event) -> None:
        self.timer.stop()
        super().closeEvent(event)


def open_compare(window, folders: list[Path]) -> CompareView | None:
    """Open a Compare window for 2–6 run folders, owned by ``window``; a person choosing fewer or more is
    told so and nothing opens."""
    folders = [Path(f) for f in folders]
    if not MIN_RUNS <= len(folders) <= MAX_RUNS:
        QMessageBox.information(window, "Compare runs",
                                f"Choose {MIN_RUNS} to {MAX_RUNS} runs to compare ({len(folders)} chosen).")
        return None
    view = CompareView(folders, parent=window)
    view.setWindowFlag(Qt.WindowType.Window)  # its own window, closed with its owner
    view.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    view.resize(1280, 860)
    view.show()
    return view

