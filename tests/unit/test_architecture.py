"""The house rules of ARCHITECTURE.md, checked on the code's own imports: a stage imports
only stages below it, only host/runner.py starts processes, only the command layer prints."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "watchbench"
# ARCHITECTURE.md's stages, lowest first; a module may import its own stage and lower ones.
LAYERS = ["errors", "settings", "host", "kernel", "guest", "vm", "results", "suite", "stats",
          "report", "flows", "cli"]
SAME_FLOOR = {"errors": 0, "settings": 0}  # settings raises InputError from errors


def _stage(module: str) -> str:
    parts = module.split(".")
    assert parts[0] == "watchbench", module
    return parts[1] if len(parts) > 1 else ""


def _floor(stage: str) -> int:
    return SAME_FLOOR.get(stage, LAYERS.index(stage))


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "watchbench":
                found += [(node.lineno, f"watchbench.{a.name}") for a in node.names]
            elif node.module.startswith("watchbench."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("watchbench")]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_belongs_to_a_stage():
    for path in _modules():
        rel = path.relative_to(ROOT).with_suffix("")
        stage = _stage(".".join(rel.parts))
        assert stage in LAYERS or stage == "__init__", f"{rel}: not in a stage of ARCHITECTURE.md"


def test_lower_stages_never_import_higher_ones():
    wrong = []
    for path in _modules():
        rel = path.relative_to(ROOT).with_suffix("")
        here = _stage(".".join(rel.parts))
        if here == "__init__":
            continue
        for line, module in _imports(path):
            there = _stage(module)
            if _floor(there) > _floor(here):
                wrong.append(f"{rel}.py:{line} ({here}) imports {module} ({there})")
    assert wrong == []


def test_no_module_imports_inside_a_function_to_dodge_a_cycle():
    """Function-level imports of our own modules hide the real dependencies (the command
    layer may import pytest lazily: it is not ours)."""
    lazy = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith(
                            "watchbench"):
                        lazy.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert lazy == []


def test_only_the_runner_imports_subprocess():
    users = [str(p.relative_to(ROOT)) for p in [*_modules(), ROOT / "tasks.py"]
             if any(module == "subprocess" for _, module in _all_imports(p))]
    assert users == ["watchbench/host/runner.py"]


def _all_imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.lineno, node.module))
    return out


@pytest.mark.parametrize("stage", [s for s in LAYERS if s != "cli"])
def test_only_the_command_layer_prints(stage):
    target = PACKAGE / stage
    paths = sorted(target.rglob("*.py")) if target.is_dir() else [PACKAGE / f"{stage}.py"]
    printing = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                printing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert printing == []


def test_tasks_only_call_the_command_layer():
    """The collection (in the package, for an installed wb) calls the command layer only;
    the checkout's tasks.py only re-exports it for `inv`."""
    imported = {module for _, module in _all_imports(PACKAGE / "cli" / "tasks.py")
                if module.startswith("watchbench")}
    assert imported <= {"watchbench.cli", "watchbench.settings"}, imported
    shim = {module for _, module in _all_imports(ROOT / "tasks.py")}
    assert shim == {"watchbench.cli.tasks"}, shim
