"""``admin.py`` and ``status.py`` see the node through ``node_view.NodeView`` only.

They used to name ``NodeServer`` (for types), which made them and
``node_server.py`` an import circle; each must now import on its own and never
mention ``node_server``, not even under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import resonetics.server

SERVER = Path(resonetics.server.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", ["admin", "status", "node_view"])
def test_admin_and_status_do_not_import_node_server(module: str) -> None:
    imported = _imported_modules(SERVER / f"{module}.py")
    assert not any("node_server" in name for name in imported), sorted(imported)


@pytest.mark.parametrize("module", ["admin", "status", "node_view", "node_server"])
def test_each_server_module_imports_alone(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import resonetics.server.{module}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
