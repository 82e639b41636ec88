"""Start-up: solving a formal file imports only what that file needs.

Each case runs ``formalist solve FILE --json`` in a fresh interpreter and lists the modules it
loaded. No timings here (those are ``benchmarks/startup.py``'s): a heavy import coming back on a
formal path is what this catches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

NEVER_ON_A_FORMAL_PATH = {
    "langchain_core",
    "langchain_openai",
    "langchain_ollama",
    "torch",
    "transformers",
    "fastapi",
    "uvicorn",
    "mcp",
    "openai",
    "matplotlib",
    "pyomo",
    "unified_planning",
}
"""The language-model stack, the service, plotting, the Pyomo backend, unified-planning."""

PROBE = """
import contextlib, io, json, sys
from agent.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(["solve", sys.argv[1], "--json", "--no-cache", "--time-limit", "20"])
answer = json.loads(out.getvalue())
print(json.dumps({
    "code": code,
    "status": answer["status"],
    "modules": sorted({m.split(".")[0] for m in sys.modules}),
}))
"""


def run_python(code: str, *args: str) -> str:
    """What a fresh interpreter running ``code`` in the project root prints (it must succeed)."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def loaded_by(path: str) -> dict:
    return json.loads(run_python(PROBE, path).splitlines()[-1])


@pytest.mark.parametrize(
    ("path", "also_never"),
    [
        # LP and MPS files go straight to HiGHS: not even pydantic or PyYAML (five-element only)
        ("examples/transport.lp", {"pydantic", "yaml", "clingo", "pyvrp"}),
        ("examples/production.mps", {"pydantic", "yaml", "clingo", "pyvrp"}),
        ("examples/blocksworld_six_blocks.pddl", {"highspy", "numpy", "clingo", "pyvrp"}),
    ],
)
def test_a_formal_file_loads_no_heavy_stack(path: str, also_never: set[str]) -> None:
    probe = loaded_by(path)
    assert probe["code"] == 0 and probe["status"] in ("OPTIMAL", "FEASIBLE")
    loaded = set(probe["modules"]) & (NEVER_ON_A_FORMAL_PATH | also_never)
    assert not loaded, f"{path} loaded {sorted(loaded)}"


def test_the_kinds_registry_loads_a_kind_on_first_lookup() -> None:
    code = (
        "import sys\n"
        "from agent.kinds import KINDS, KIND_NAMES\n"
        "assert sorted(KINDS) == sorted(KIND_NAMES) and len(KINDS) == 5\n"
        "before = {m for m in sys.modules if m.startswith('agent.kinds.')}\n"
        "KINDS['milp']\n"
        "after = {m for m in sys.modules if m.startswith('agent.kinds.')}\n"
        "print(sorted(before), sorted(after - before))\n"
    )
    assert run_python(code) == "['agent.kinds.base'] ['agent.kinds.milp']"


def test_the_kinds_and_a_configured_model_load_no_langchain_for_a_formal_file(
    tmp_path: Path,
) -> None:
    """``import agent.kinds``, every kind loaded, an agent with a model configured: solving an LP
    file through it still loads no LangChain (the model layer loads it on the first model call, and
    the kinds and formalizers reach it only through the ``Chat`` protocol)."""
    recording = tmp_path / "replies.jsonl"
    recording.write_text("", encoding="utf-8")
    code = (
        "import sys\n"
        "import agent.kinds\n"
        "from agent.kinds import KINDS\n"
        "loaded = [type(kind).__name__ for kind in KINDS.values()]\n"
        "from agent.agent import Agent\n"
        f"agent = Agent(model={'replay:' + str(recording)!r})\n"
        "answer = agent.solve(open('examples/transport.lp').read())\n"
        "print(len(loaded), answer.status.value, answer.verified,"
        " sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('langchain_core', 'langchain_openai', 'langchain_ollama')))\n"
    )
    assert run_python(code) == "5 OPTIMAL True []"
