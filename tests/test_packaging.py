"""resources/ must ship inside the wheel: every bundled file matches the package-data globs."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_resource_file_is_in_package_data():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setup["package-dir"]["ganstudio._resources"] == "resources"
    globs = setup["package-data"]["ganstudio._resources"]
    files = [p.relative_to(ROOT / "resources") for p in (ROOT / "resources").rglob("*") if p.is_file()]
    assert files
    missing = [str(f) for f in files if not any(f.match(g) and len(f.parts) == len(Path(g).parts) for g in globs)]
    assert not missing, f"not shipped in the wheel: {missing}"


def test_resources_are_found():
    from ganstudio.resources import resource

    assert resource("presets", "dcgan-fashion.toml").is_file()
