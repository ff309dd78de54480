"""The layering of DESIGN.md, enforced: nothing below the GUI imports Qt (import-linter contract)."""

import shutil
import subprocess
import sys
from pathlib import Path


def test_import_contracts_hold():
    root = Path(__file__).resolve().parents[1]
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is part of the test extra: pip install -e '.[test]'"
    result = subprocess.run([exe, "--config", str(root / "pyproject.toml")], cwd=root,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_engine_import_does_not_load_qt():
    code = "import sys, ganstudio.cli, ganstudio.engine; assert 'PySide6' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
