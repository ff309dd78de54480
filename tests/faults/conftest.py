"""The fault-injection suite: real subprocesses, real signals, full disks, concurrent writers and crafted
files. Each test's docstring states the promise it checks (exact resume, nothing deleted, a clear line,
no code run, no hang)."""
