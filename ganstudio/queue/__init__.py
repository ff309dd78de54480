"""The run queue: jobs (``ganstudio train`` arguments) in ``queue.json`` in the runs folder, worked through
one at a time by ``ganstudio queue run`` (runner.py), edited by ``ganstudio queue add|remove`` (command.py)
and the studio's queue dock. Torch-free and Qt-free."""

from ganstudio.queue.jobs import (
    DONE, QUEUE_FILE, STATES, Job, JobQueue, QueueError, QueueFile, parse_sweep, runner_alive, sweep_jobs,
)

__all__ = ["DONE", "QUEUE_FILE", "STATES", "Job", "JobQueue", "QueueError", "QueueFile", "parse_sweep",
           "runner_alive", "sweep_jobs"]
