"""``resonetics demo --base-port``: the demo's nodes serve on the ports asked for."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.torture.test_cli_run import _free_base_port

pytestmark = pytest.mark.slow


def test_demo_serves_its_nodes_on_base_port_and_up() -> None:
    base = _free_base_port()
    result = subprocess.run(
        [sys.executable, "-m", "resonetics", "demo", "--writes", "20", "--base-port", str(base)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for i in range(3):
        assert f"started n{i + 1} on 127.0.0.1:{base + i}" in result.stdout
