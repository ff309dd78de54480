"""`ganstudio` with no arguments: the window opens before torch is imported, then the app exits cleanly."""

import subprocess
import sys


def test_window_shows_before_torch_is_imported(tmp_path):
    code = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "import ganstudio.gui.app as app\n"
        "def check():\n"
        "    w = [w for w in QApplication.topLevelWidgets() if w.objectName() == 'main_window'][0]\n"
        "    print('shown', w.isVisible(), 'title', w.windowTitle())\n"
        "    QApplication.closeAllWindows()\n"
        "QTimer.singleShot(0, check)\n"
        "import ganstudio.gui.main_window\n"
        "_show = ganstudio.gui.main_window.MainWindow.show\n"
        "def show(self):\n"
        "    _show(self)\n"
        "    print('torch loaded at show:', 'torch' in sys.modules)\n"
        "ganstudio.gui.main_window.MainWindow.show = show\n"
        "sys.exit(app.run_studio())\n"
    )
    env = {"QT_QPA_PLATFORM": "offscreen", "GANSTUDIO_SETTINGS": str(tmp_path / "s.ini"),
           "GANSTUDIO_RUNS": str(tmp_path / "runs"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "torch loaded at show: False" in result.stdout
    assert "shown True title ganstudio" in result.stdout
