"""The command file: how a window, a shell or the queue steer a run that another process writes.

``commands.jsonl`` in the run folder, one JSON object a line, appended (fileio.append_line, so a reader
sees whole lines): ``{"command": "pause", "sent": <unix time>}`` or ``{"command": "set", "key":
"optim.lr_g", "value": 1e-4, "sent": ...}``. The writer polls it a few times a second (``CommandReader``)
and maps each command onto its ``Control``. No network and no server: it works over a shared folder.

Only commands sent since the writer took the run count: lines already in the file when it starts are
replayed only when their ``sent`` time is later than its start (a pause sent while the data loaded).
No torch here: the studio sends commands from its GUI thread.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ganstudio.engine.lock import LOCK_FILE
from ganstudio.fileio import append_line

COMMANDS_FILE = "commands.jsonl"
POLL_INTERVAL = 0.25  # seconds between looks at the file (one stat when nothing is new)
REQUESTS = ("sample", "evaluate", "checkpoint")
STEPS = {"step": "both", "step_d": "d", "step_g": "g"}
COMMANDS = ("pause", "resume", *STEPS, "stop", *REQUESTS, "set")


class CommandError(ValueError):
    """A command that cannot be sent: unknown, or ``set`` without a key."""


def send_command(folder: str | Path, command: str, **fields: Any) -> dict:
    """Append one command for the run in ``folder``; returns the line written. Raises CommandError for an
    unknown command and WriteError (an OSError) when the file cannot be written."""
    if command not in COMMANDS:
        raise CommandError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    if command == "set" and not isinstance(fields.get("key"), str):
        raise CommandError("set needs a key (a dotted config field such as optim.lr_g) and a value")
    line = {"command": command, **fields, "sent": time.time()}
    append_line(Path(folder) / COMMANDS_FILE, json.dumps(line))
    return line


def writer_since(folder: str | Path) -> float:
    """When this run's writer took it: its ``run.lock``'s time (before the data loaded), else now."""
    try:
        return min(os.stat(Path(folder) / LOCK_FILE).st_mtime, time.time())
    except OSError:
        return time.time()


class CommandReader:
    """The writer's side: ``poll(control)`` applies what is new and returns a warning per bad line."""

    def __init__(self, folder: str | Path, since: float) -> None:
        self.path = Path(folder) / COMMANDS_FILE
        self.since = since  # the writer's start (Unix time): older lines in the file are history
        self.offset: int | None = None  # bytes already read; None until the first look
        self.next_look = 0.0

    def poll(self, control, force: bool = False) -> list[str]:
        now = time.monotonic()
        if not force and now < self.next_look:
            return []
        self.next_look = now + POLL_INTERVAL
        first = self.offset is None
        try:
            size = os.stat(self.path).st_size
        except OSError:
            self.offset = 0  # no file yet: everything in it will be new
            return []
        if first:
            self.offset = 0
        elif size < self.offset:
            self.offset = 0  # replaced or cut back by someone: read it anew
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        whole = data[:data.rfind(b"\n") + 1]  # a torn last line (mid-append) waits for the next look
        self.offset += len(whole)
        warnings = []
        for raw in whole.splitlines():
            if raw.strip():
                warning = self._apply(raw, control, old=first)
                if warning:
                    warnings.append(warning)
        return warnings

    def _apply(self, raw: bytes, control, old: bool) -> str | None:
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        sent = line.get("sent") if isinstance(line, dict) else None
        if old and not (isinstance(sent, int | float) and sent >= self.since):
            return None  # sent to an earlier writer of this run (its warning, if any, was given then)
        if not isinstance(line, dict):
            return f"{self.path}: ignored a line that is not a JSON command object: {_shown(raw)}"
        command = line.get("command")
        if command not in COMMANDS:
            return f"{self.path}: ignored unknown command {command!r} (commands: {', '.join(COMMANDS)})"
        if command == "set":
            key = line.get("key")
            if not isinstance(key, str) or "value" not in line:
                return f"{self.path}: ignored a set without a key and a value: {_shown(raw)}"
            control.set_hparam(key, line["value"])  # the loop refuses a field that is not live, with a warning
        elif command in STEPS:
            if not control.paused:
                control.pause()  # a step is taken from a pause, as in the studio
            control.step_once(STEPS[command])
        elif command in REQUESTS:
            control.request(command)
        else:
            getattr(control, command)()
        return None


def _shown(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return text if len(text) <= 120 else text[:117] + "..."


def control_run(folder: str | Path, command: str, setting: str | None = None) -> dict:
    """``ganstudio control``: check the command, the field and its value against the run's config, check
    that someone writes the run, then send it. ConfigError or CommandError say what is wrong."""
    from ganstudio.config import ConfigError, RunConfig, is_live, parse_override
    from ganstudio.engine.lock import writer_alive
    from ganstudio.engine.status import effective_state, read_status

    folder = Path(folder)
    command = command.replace("-", "_")
    if command not in COMMANDS:
        names = ", ".join(name.replace("_", "-") for name in COMMANDS)
        raise CommandError(f"unknown command {command!r}; commands: {names}")
    fields: dict[str, Any] = {}
    if command == "set":
        if not setting:
            raise CommandError("set needs KEY=VALUE, e.g. ganstudio control RUN_DIR set optim.lr_g=1e-4")
        key, value = parse_override(setting)
        if not is_live(key):
            raise ConfigError(f"{key} cannot change while a run is going (only live fields can); stop the run, "
                              "then continue it with ganstudio train --resume DIR --set KEY=VALUE")
        RunConfig.load(folder / "config.toml").updated(key, value, source="ganstudio control")  # its bounds
        fields = {"key": key, "value": value}
    elif setting:
        raise CommandError(f"{command} takes no value (got {setting!r})")
    if not folder.is_dir():
        raise CommandError(f"{folder} is not a run folder")
    if not writer_alive(folder):
        status, _ = read_status(folder)
        state = effective_state(folder, status) if status else "not started"
        raise CommandError(f"nobody is writing {folder} now (its state: {state}); a command would be ignored. "
                           "Continue the run with ganstudio train --resume DIR")
    return send_command(folder, command, **fields)
