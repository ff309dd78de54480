"""`ganstudio` as a person starts it: the window paints before torch loads, then torch and the preview
load in the background; the start-up report hook (benchmarks/startup.py) says so and quits."""

import json
import subprocess
import sys


def test_real_command_paints_first_then_loads_torch(tmp_path):
    report = tmp_path / "report.json"
    env = {"QT_QPA_PLATFORM": "offscreen", "GANSTUDIO_SETTINGS": str(tmp_path / "s.ini"), "PATH": "/usr/bin:/bin",
           "GANSTUDIO_RUNS": str(tmp_path / "runs"), "GANSTUDIO_REPORT_FIRST_PAINT": str(report)}
    for _ in range(2):  # a first start, then one with the settings it saved (the last config)
        result = subprocess.run([sys.executable, "-m", "ganstudio"], capture_output=True, text=True, timeout=180,
                                env=env)
        assert result.returncode == 0, result.stderr
        figures = json.loads(report.read_text())
        assert figures["torch_at_paint"] is False
        assert figures["first_paint"] <= figures["torch"] and figures["first_paint"] <= figures["preview"]
        assert figures["ticks"] > 0 and figures["max_stall_ms"] >= 0
    assert "last_config" in (tmp_path / "s.ini").read_text()
