"""Where the bundled files (presets, the default dataset) live.

A wheel ships ``resources/`` inside the package as ``ganstudio/resources``; a checkout keeps it at the
top level beside ``ganstudio/``. Both are found here, so nothing else needs to know which it is.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def resources_dir() -> Path:
    """The folder holding presets/, datasets/ and the other bundled files."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_resources", package.parent / "resources"):
        if (candidate / "presets").is_dir():
            return candidate
    raise FileNotFoundError(
        f"ganstudio's resources folder is missing (looked in {package / '_resources'} and "
        f"{package.parent / 'resources'}); reinstall the package"
    )


def resource(*parts: str) -> Path:
    """Path of one bundled file, e.g. ``resource("presets", "mlp-gan.toml")``."""
    return resources_dir().joinpath(*parts)
