"""``formalist tools list|show|rm`` and ``formalist sandbox run|layers``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pg_cluster import database_url as pg_database_url

from agent.cli import main
from tool_maker.cache import ToolCache
from tool_maker.layers import SandboxUnavailable
from tool_maker.sandbox import Sandbox
from tool_maker.tool import Tool, ToolCall

CODE = 'def double(x: int) -> int:\n    """Twice x."""\n    return 2 * x\n'


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A tool cache holding ``double``: an SQLite file, or a database on the test PostgreSQL."""
    path: Path | str = tmp_path / "tools.sqlite"
    if request.param == "postgresql":
        path = pg_database_url()
    cache = ToolCache(path)
    demo = ToolCall("What is twice 4?", [4], {}, 8)
    test = ToolCall("What is twice 5?", [5], {}, 10)
    cache.put(
        Tool(
            "double",
            "double",
            "doubling",
            "Twice x.",
            "double(x: int) -> int",
            CODE,
            (demo,),
            (test,),
            "replay:scripted",
        )
    )
    cache.close()
    return path


@pytest.fixture(scope="module")
def ready() -> None:
    try:
        Sandbox().check_ready()
    except SandboxUnavailable as e:
        pytest.skip(f"the sandbox cannot run on this machine: {e}")


def test_tools_list_show_rm(db: Path | str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "list", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "double" in out and "v1" in out and "doubling" in out
    assert main(["tools", "list", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["name"] == "double"
    assert main(["tools", "show", "double", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "return 2 * x" in out and "What is twice 5?" in out and "replay:scripted" in out
    assert main(["tools", "show", "double", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["code"] == CODE
    assert main(["tools", "show", "nope", "--db", str(db)]) == 2
    assert "no tool named 'nope'" in capsys.readouterr().err
    assert main(["tools", "rm", "double", "--db", str(db)]) == 0
    assert "removed double (1 version)" in capsys.readouterr().out
    assert main(["tools", "list", "--db", str(db)]) == 0
    assert "no tools cached" in capsys.readouterr().out


def test_tools_db_from_the_environment(
    db: Path | str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORMALIST_TOOLS_DB", str(db))
    assert main(["tools", "list"]) == 0
    assert "double" in capsys.readouterr().out


def test_sandbox_run_prints_the_value(
    ready: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "ok.py"
    f.write_text("import math\ndef main():\n    return {'root': math.isqrt(144)}\n")
    assert main(["sandbox", "run", str(f)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"root": 12}
    assert "seccomp" in captured.err  # the layers in force
    assert main(["sandbox", "run", str(f), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (
        result["status"] == "OK"
        and result["value"] == {"root": 12}
        and "rlimits" in result["layers"]
    )


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("import os\ndef main():\n    return os.getcwd()\n", "importing `os` is not allowed"),
        ("def main():\n    return len(bytearray(10**10))\n", "MEMORY_LIMIT"),
        ("def main():\n    return {1}\n", "BAD_RESULT: the result is not JSON"),
        ("def main():\n    raise ValueError('no')\n", "raised ValueError at line 2: no"),
    ],
)
def test_sandbox_run_says_why_it_stopped(
    ready: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], code: str, why: str
) -> None:
    f = tmp_path / "bad.py"
    f.write_text(code)
    assert main(["sandbox", "run", str(f)]) == 1
    assert why in capsys.readouterr().err


def test_sandbox_run_wall_limit(
    ready: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "slow.py"
    f.write_text("def main():\n    while True:\n        pass\n")
    assert main(["sandbox", "run", str(f), "--wall", "0.5", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "TIMEOUT"


def test_sandbox_run_unreadable_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "run", "/nonexistent/file.py"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_sandbox_layers(ready: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "layers", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)
    assert set(layers) == {
        "static",
        "process",
        "rlimits",
        "unprivileged",
        "seccomp",
        "landlock",
        "namespaces",
    }
    assert layers["seccomp"]["available"]


def _strict(text: str) -> object:
    from tool_maker.sandbox import strict_json_loads

    return strict_json_loads(text)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("def main():\n    return [float('nan'), float('inf')]\n", "BAD_RESULT"),
        ("def main():\n    return {'a': 'x' + chr(0xD800)}\n", "BAD_RESULT"),
        ("def main():\n    raise ValueError('bad ' + chr(0xDC80))\n", "ERROR"),
        (
            "def main():\n    v = []\n    for _ in range(100000):\n        v = [v]\n    return v\n",
            "",
        ),
    ],
)
def test_sandbox_run_json_is_always_strict_and_small(
    ready: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], code: str, status: str
) -> None:
    """NaN, infinities, lone surrogates and a 200 KB deeply nested result: the command exits 1
    with strict JSON of a bounded size, never a traceback or invalid JSON."""
    f = tmp_path / "bad.py"
    f.write_text(code)
    assert main(["sandbox", "run", str(f), "--json"]) == 1
    out = capsys.readouterr().out
    result = _strict(out)
    assert isinstance(result, dict) and result["value"] is None
    assert result["status"] == status or (
        not status and result["status"] in ("BAD_RESULT", "ERROR")
    )
    assert len(out) < 10_000
    assert main(["sandbox", "run", str(f)]) == 1  # and the plain form says why, in one line
    assert "stopped: " in capsys.readouterr().err


def test_sandbox_run_prints_a_large_result_compactly(
    ready: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "wide.py"
    f.write_text("def main():\n    return [[[[i, [i]]]] for i in range(20000)]\n")
    assert main(["sandbox", "run", str(f)]) == 0
    out = capsys.readouterr().out
    compact = json.dumps([[[[i, [i]]]] for i in range(20000)], ensure_ascii=False)
    assert json.loads(out) == json.loads(compact) and len(out) <= len(compact) + 1


def test_render_json_indents_small_values_and_refuses_what_json_cannot_hold() -> None:
    from agent.errors import InputError
    from tool_maker.cli import render_json

    assert render_json({"a": [1, 2]}) == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    deep: object = 1
    for _ in range(90):
        deep = [deep, "x" * 30]
    text = render_json(deep)
    assert "\n" not in text and json.loads(text) == deep  # indenting would square the size
    for bad in (float("nan"), [float("inf")], {1, 2}):
        with pytest.raises(InputError, match="cannot be printed as JSON"):
            render_json(bad)
