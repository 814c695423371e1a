"""The decorators keep signatures for type checkers (ParamSpec): checked with mypy --strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent

BAD = '''
import galileo_sessions as gs

@gs.span(type="tool")
def tool(x: int) -> str:
    return str(x)

@gs.trace
async def agent(q: str) -> int:
    return len(q)

@gs.session("s", external_id=lambda user: user)
def turn(user: str) -> None: ...

class C:
    @gs.span
    def m(self, x: int) -> int:
        return x

tool("not an int")
tool(1, 2)
y: int = tool(1)
z: str = agent("q")
turn(3)
C().m("x")
'''


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy")
    command = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir",
               "/dev/null", "--hide-error-context", "--no-error-summary", *args]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=300,
                          cwd=HERE.parent)


@pytest.mark.slow
def test_typing_check_file_passes_strict() -> None:
    result = _mypy(str(HERE / "typing_check.py"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_wrong_argument_types_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad_usage.py"
    bad.write_text(BAD)
    result = _mypy(str(bad))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if ": error:" in line]
    lineno = {i + 1: text for i, text in enumerate(BAD.splitlines())}
    flagged = {lineno[int(line.split(":")[1])].strip() for line in lines}
    assert flagged == {'tool("not an int")', "tool(1, 2)", "y: int = tool(1)",
                       'z: str = agent("q")', "turn(3)", 'C().m("x")'}, result.stdout
