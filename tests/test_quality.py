"""The house rules, enforced by the test command: mypy strict and ruff clean.

Both tools are in the ``test`` extra; their configuration lives in pyproject.toml.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          check=False)


@pytest.mark.slow
def test_mypy_strict_on_the_package() -> None:
    result = _run(sys.executable, "-m", "mypy", "galileo_sessions")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_on_code_tests_benchmarks_and_examples() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    result = _run(ruff, "check", "galileo_sessions", "tests", "benchmarks", "examples")
    assert result.returncode == 0, result.stdout + result.stderr
