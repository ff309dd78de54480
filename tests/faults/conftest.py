"""The fault-injection suite: real subprocesses, real signals, full disks, concurrent writers and crafted
files. Each test's docstring states the promise it checks (exact resume, nothing deleted, a clear line,
no code run, no hang)."""

import pytest
from processes import Train


@pytest.fixture
def train(tmp_path):
    """Start `ganstudio train` processes; any still running at the end is killed."""
    started: list[Train] = []

    def start(*args: str, code: str | None = None) -> Train:
        started.append(Train(tmp_path, *args, code=code))
        return started[-1]

    yield start
    for process in started:
        process.kill()
