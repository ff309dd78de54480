"""The layering of DESIGN.md, enforced: import-linter's contracts (nothing but the GUI imports Qt; layers
point down), no import cycle anywhere in the package, and light modules that stay light."""

import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

import ganstudio

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is part of the test extra: pip install -e '.[test]'"
    result = subprocess.run([exe, str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _top_level() -> set[str]:
    return {name for _, name, _ in pkgutil.iter_modules(ganstudio.__path__)} - {"_resources"}


def test_every_module_but_the_gui_is_in_the_no_qt_contract():
    forbidden = next(c for c in _contracts() if c["type"] == "forbidden")
    listed = {m.removeprefix("ganstudio.") for m in forbidden["source_modules"]}
    assert listed == _top_level() - {"gui"}, "add the new module to the contract in pyproject.toml"


def test_every_module_has_a_layer():
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    placed = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    assert placed == _top_level(), "place the new module on a layer in pyproject.toml"


def find_cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), over every import statement,
    including those inside functions: a lazy import that closes a circle is still a circle."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1 or v in edges[v]:
                cycles.append(sorted(component))

    for module in edges:
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycles():
    assert find_cycles(grimp.build_graph("ganstudio")) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        graph.add_import(importer=a, imported=b)
    assert find_cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_engine_import_does_not_load_qt():
    code = "import sys, ganstudio.cli, ganstudio.engine; assert 'PySide6' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_engine_control_and_run_folder_do_not_load_torch():
    """What the studio touches on its GUI thread before torch has loaded (run_control.py, the gallery)."""
    code = ("import sys, ganstudio.engine.control, ganstudio.engine.events, ganstudio.engine.rundir\n"
            "from ganstudio.engine import Control, Progress, RunDir, StepStats\n"
            "Control().pause()\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
