"""The package layering is strict: core <- models <- pipelines <- service. Nothing imports upward.

Parses every import statement (top level and inside functions; `TYPE_CHECKING` blocks too) of every module,
so a lazy import cannot hide a dependency on a higher layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["core", "models", "pipelines", "service"]


def imported_packages(path: Path) -> set[str]:
    """Top-level package names that `path` imports (absolute imports only; relative ones stay inside)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def upward_imports(layer: str) -> list[str]:
    above = set(LAYERS[LAYERS.index(layer) + 1 :])
    found = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for name in sorted(imported_packages(path) & above):
            found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("layer", LAYERS[:-1])
def test_no_upward_imports(layer: str) -> None:
    assert upward_imports(layer) == []


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from service.worker import Worker\n    import pipelines.cli\n")
    assert imported_packages(module) == {"service", "pipelines"}
