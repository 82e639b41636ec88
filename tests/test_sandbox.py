"""The sandbox's ordinary behaviour: JSON in and out, statuses, caps, the static check, and
refusing to run when a required layer is missing."""

from __future__ import annotations

import dataclasses

import pytest

from tool_maker.layers import Layer, SandboxUnavailable
from tool_maker.sandbox import Sandbox, SandboxLimits, SandboxPolicy, SandboxStatus
from tool_maker.static_check import UnsafeCode, check_source, require_safe

S = SandboxStatus


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    sb = Sandbox(SandboxPolicy(limits=SandboxLimits(wall_s=3.0, cpu_s=1)))
    try:
        sb.check_ready()
    except SandboxUnavailable as e:
        pytest.skip(f"the sandbox cannot run on this machine: {e}")
    return sb


def test_arguments_and_result_cross_as_json(sandbox: Sandbox) -> None:
    code = (
        "from fractions import Fraction\n"
        "def add(a: int, b: list, scale: float = 1.0) -> dict:\n"
        "    '''Adds things.'''\n"
        "    return {'sum': (a + sum(b)) * scale, 'half': str(Fraction(a, 2)), 'text': 'é'}\n"
    )
    r = sandbox.run(code, "add", [3, [1, 2]], {"scale": 2.0})
    assert r.ok, r.describe()
    assert r.value == {"sum": 12.0, "half": "3/2", "text": "é"}
    assert {"static", "process", "rlimits", "unprivileged", "seccomp"} <= set(r.layers)


def test_printed_output_is_kept_apart_from_the_value(sandbox: Sandbox) -> None:
    r = sandbox.run("def main():\n    print('hello')\n    return 1\n")
    assert r.ok and r.value == 1 and r.output == "hello\n"


def test_an_exception_is_a_result_with_its_line(sandbox: Sandbox) -> None:
    r = sandbox.run("def main():\n    x = 1\n    return x / 0\n")
    assert r.status is S.ERROR
    assert r.error_type == "ZeroDivisionError" and r.line == 3
    assert "line 3" in r.describe()


def test_missing_entry_point(sandbox: Sandbox) -> None:
    r = sandbox.run("def other():\n    return 1\n", "main")
    assert r.status is S.ERROR and "no function named 'main'" in r.message


def test_arguments_that_are_not_json_are_refused_before_running(sandbox: Sandbox) -> None:
    from tool_maker.sandbox import SandboxFault

    with pytest.raises(SandboxFault, match="not JSON"):
        sandbox.run("def main(x):\n    return x\n", "main", [{1, 2}])


def test_guarded_builtins_refuse_what_the_static_check_refuses() -> None:
    """With the static check off, the child's own guards still refuse a banned import."""
    sb = Sandbox(SandboxPolicy(static_check=False))
    r = sb.run("def main():\n    import os\n    return 1\n")
    assert r.status is S.ERROR and r.error_type == "ImportError"
    r = sb.run("def main():\n    return open('/etc/hostname').read()\n")
    assert r.status is S.ERROR and r.error_type == "NameError"


def test_a_required_layer_that_is_missing_stops_the_sandbox(sandbox: Sandbox) -> None:
    broken = dict(sandbox.machine.layers)
    broken["seccomp"] = Layer("seccomp", False, "pretend libseccomp is missing")
    sb = Sandbox(sandbox.policy)
    sb._machine = dataclasses.replace(sandbox.machine, layers=broken)
    with pytest.raises(SandboxUnavailable, match="seccomp: pretend libseccomp is missing"):
        sb.run("def main():\n    return 1\n")
    # Explicitly accepted: it runs, and the call's layers say seccomp was not there.
    sb = Sandbox(dataclasses.replace(sandbox.policy, allow_missing=frozenset({"seccomp"})))
    sb._machine = dataclasses.replace(sandbox.machine, layers=broken)
    r = sb.run("def main():\n    return 1\n")
    assert r.ok and "seccomp" not in r.layers


def test_an_optional_layer_can_be_required() -> None:
    sb = Sandbox(
        SandboxPolicy(require=frozenset({"namespaces"}), interpreter="/nonexistent/python")
    )
    with pytest.raises(SandboxUnavailable, match="namespaces"):
        sb.run("def main():\n    return 1\n")


def test_policy_rejects_unknown_layers() -> None:
    with pytest.raises(ValueError, match="unknown sandbox layer"):
        SandboxPolicy(require=frozenset({"magic"}))


def test_policy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORMALIST_SANDBOX_ALLOW_MISSING", "seccomp, namespaces")
    monkeypatch.setenv("FORMALIST_SANDBOX_REQUIRE", "landlock")
    p = SandboxPolicy.from_env()
    assert p.allow_missing == {"seccomp", "namespaces"} and "landlock" in p.require


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("import os\n", "importing `os` is not allowed"),
        ("from subprocess import run\n", "importing `subprocess`"),
        ("from . import x\n", "relative imports"),
        ("x = eval('1')\n", "`eval` is not available"),
        ("exec('x = 1')\n", "`exec` is not available"),
        ("f = open\n", "`open` is not available"),
        ("g = getattr(1, 'real')\n", "`getattr` is not available"),
        ("x = globals()\n", "`globals` is not available"),
        ("x = __import__('os')\n", "`__import__` is not available"),
        ("x = ().__class__\n", "attribute `.__class__`"),
        ("import random\nx = random._os\n", "attribute `._os`"),
        ("import dataclasses\nx = dataclasses.sys\n", "attribute `.sys`"),
        ("g = (i for i in [])\nf = g.gi_frame\n", "attribute `.gi_frame`"),
        ("s = '{0.__class__}'.format(1)\n", "reaches into attributes"),
        ("s = '{x.real}'.format(x=1)\n", "reaches into attributes"),
        ("class A(metaclass=type):\n    pass\n", "metaclasses"),
        ("def main(:\n", "syntax error"),
    ],
)
def test_static_check_names_the_rule_and_the_line(code: str, fragment: str) -> None:
    found = check_source(code)
    assert found, code
    assert any(fragment in d.render() for d in found), [d.render() for d in found]
    assert all(d.location.startswith("line ") for d in found)


@pytest.mark.parametrize(
    "code",
    [
        "import math, re, json\nfrom collections import Counter\nfrom itertools import permutations\n"
        "def f(xs: list[int]) -> int:\n    '''Doc.'''\n    return sum(xs)\n",
        "def f(x):\n    return '{:.2f} and {0}'.format(x) + f'{x!r:>10}'\n",
        "import re\ndef f(s):\n    return re.findall(r'\\d{2,3}', s)\n",
        "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n",
    ],
)
def test_static_check_passes_ordinary_tools(code: str) -> None:
    assert check_source(code) == []


def test_require_safe_raises_feedback_for_the_model() -> None:
    with pytest.raises(UnsafeCode) as e:
        require_safe("import os\nx = eval('1')\n")
    text = e.value.feedback()
    assert "2 problems" in text and "line 1" in text and "line 2" in text


def test_the_service_uid_needs_landlock_or_namespaces(sandbox: Sandbox) -> None:
    """A service that is not root cannot drop to another uid; then a file-system layer must
    keep the child from the service's files, or the sandbox refuses."""
    policy = dataclasses.replace(
        sandbox.policy,
        skip=frozenset({"landlock", "namespaces"}),
        allow_missing=frozenset({"namespaces"}),
    )
    sb = Sandbox(policy)
    sb._machine = dataclasses.replace(sandbox.machine, uid=None, gid=None)
    with pytest.raises(SandboxUnavailable, match="service's own uid"):
        sb.check_ready()


def test_without_pidfd_the_exit_is_polled(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pidfd(pid: int) -> int:
        raise OSError("pidfd_open is not available")

    monkeypatch.setattr("tool_maker.sandbox.os.pidfd_open", no_pidfd)
    r = sandbox.run("def main():\n    return 41 + 1\n")
    assert r.ok and r.value == 42
    r = sandbox.run(
        "def main():\n    while True:\n        pass\n", limits=SandboxLimits(wall_s=0.3)
    )
    assert r.status is S.TIMEOUT
