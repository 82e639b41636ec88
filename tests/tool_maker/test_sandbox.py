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


def test_honest_tools_work_under_the_guards(sandbox: Sandbox) -> None:
    """datetime's strftime/strptime (which import `time` and `_strptime` from C), dataclasses
    and namedtuple (which compile their methods), typing's forward references (compiled, not
    evaluated), operator's getters with literal names and literal format templates all work
    with the static check and the guards on."""
    code = (
        "import datetime, calendar, operator, string, typing\n"
        "from dataclasses import dataclass, field\n"
        "from collections import namedtuple\n"
        "@dataclass(order=True)\n"
        "class Job:\n"
        "    due: int\n"
        "    name: str = ''\n"
        "    tags: list = field(default_factory=list)\n"
        "Pair = namedtuple('Pair', 'a b')\n"
        "class Span(typing.NamedTuple):\n"
        "    lo: int\n"
        "    hi: int\n"
        "@dataclass\n"
        "class Node:\n"
        "    value: int\n"
        "    kids: typing.List['Node'] = field(default_factory=list)\n"
        "    parent: typing.Optional['Node'] = None\n"
        "def main(day: str) -> dict:\n"
        "    d = datetime.datetime.strptime(day, '%Y-%m-%d')\n"
        "    jobs = sorted([Job(3, 'c'), Job(1, 'a')])\n"
        "    return {\n"
        "        'weekday': d.strftime('%A %d %B %Y'),\n"
        "        'iso': d.date().isoformat(), 'ctime': d.ctime(), 'tt': list(d.timetuple())[:3],\n"
        "        'fmt': format(d, '%H:%M'), 'month': calendar.month_abbr[d.month],\n"
        "        'first': operator.attrgetter('name')(jobs[0]), 'up': operator.methodcaller('upper')('x'),\n"
        "        'pair': Pair(1, 2).b, 'span': Span(1, 4).hi - Span(1, 4).lo,\n"
        "        'tree': len(Node(1, [Node(2), Node(3)]).kids),\n"
        "        'text': '{0:>{1}}|{x:.2f}'.format('a', 3, x=2.5), 'tmpl': string.Template('$a!').substitute(a=1),\n"
        "    }\n"
    )
    r = sandbox.run(code, "main", ["2024-02-29"])
    assert r.ok, r.describe()
    assert r.value == {
        "weekday": "Thursday 29 February 2024",
        "iso": "2024-02-29",
        "ctime": "Thu Feb 29 00:00:00 2024",
        "tt": [2024, 2, 29],
        "fmt": "00:00",
        "month": "Feb",
        "first": "a",
        "up": "X",
        "pair": 2,
        "span": 3,
        "tree": 2,
        "text": "  a|2.50",
        "tmpl": "1!",
    }


def test_the_layers_are_the_hosts_not_the_childs(sandbox: Sandbox) -> None:
    r = sandbox.run("def main():\n    return 1\n")
    assert r.ok and r.layers == sandbox.layers_in_force()
    assert r.layers[:2] == ("static", "process") and "seccomp" in r.layers


class _BadFilter(Sandbox):
    def _seccomp_hex(self) -> str:
        return (
            "00" * 8 if self._use("seccomp") else ""
        )  # one BPF instruction: the kernel refuses it


def test_a_layer_the_child_cannot_set_stops_the_call_and_names_it(sandbox: Sandbox) -> None:
    """The child says so on its setup line, before any tool code exists: that (and only that)
    makes the host blame the machine, naming the layer it asked for."""
    sb = _BadFilter(sandbox.policy)
    sb._machine = sandbox.machine
    with pytest.raises(SandboxUnavailable, match="could not set the seccomp layer"):
        sb.run("def main():\n    return 1\n")


@pytest.mark.parametrize(
    ("reply", "status", "fragment"),
    [
        (
            b'{"setup": "ok"}\n{"status": "refused", "message": "no seccomp"}',
            S.BAD_RESULT,
            "malformed",
        ),
        (
            b'{"setup": "ok"}\n\n{"setup": "failed", "layer": "seccomp"}\n',
            S.BAD_RESULT,
            "malformed",
        ),
        (b'{"setup": "ok"}\n{"status": "ok", "value": NaN}', S.BAD_RESULT, "not strict JSON"),
        (b'{"setup": "ok"}\n{"status": "ok", "value": 1e999}', S.BAD_RESULT, "not strict JSON"),
        (b'{"setup": "ok"}\n{"status": "ok", "value": "\\ud800"}', S.BAD_RESULT, "lone surrogate"),
        (b'{"setup": "ok"}\n{"status": "ok", "value": "\xff"}', S.BAD_RESULT, "not strict JSON"),
        (
            b'{"setup": "ok"}\n{"status": "ok", "value": ' + b"[" * 101 + b"]" * 101 + b"}",
            S.BAD_RESULT,
            "nested",
        ),
        (b'{"setup": "ok"}\n{"status": "ok", "value": [1], "layers": ["magic"]}', S.OK, ""),
        (
            b'{"setup": "ok"}\n{"status": "error", "type": "' + b"T" * 500 + b'", "line": true}',
            S.ERROR,
            "",
        ),
        (b'{"setup": "ok"}\n', S.CRASHED, "without a reply"),
        (b"", S.CRASHED, "before its layers were set"),
    ],
)
def test_the_tools_reply_is_read_as_untrusted_data(
    sandbox: Sandbox, reply: bytes, status: SandboxStatus, fragment: str
) -> None:
    """What follows the setup line is the tool's: strict JSON, bounded, known shapes only, and
    its `layers` ignored (the host's own are used)."""
    from tool_maker.sandbox import _split_setup

    setup, rest = _split_setup(reply)
    if setup is None:  # no setup line: the child died before its layers were set
        assert status is S.CRASHED and rest == b""
        return
    r = sandbox._read_reply(rest, 0, "")
    assert r.status is status, r.describe()
    assert fragment in r.message
    assert len(r.error_type) <= 100 and r.line is None or isinstance(r.line, int)
    if r.ok:
        assert r.value == [1] and r.layers == ()


def test_strict_json_and_result_values() -> None:
    from tool_maker.sandbox import MAX_RESULT_DEPTH, check_result_value, strict_json_loads

    assert strict_json_loads(b'{"a": [1, 2.5, "\\u00e9"]}') == {"a": [1, 2.5, "é"]}
    for bad in (b"NaN", b"[Infinity]", b"-Infinity", b"1e400", b'"\xff"', b"9" * 5000):
        with pytest.raises(ValueError):
            strict_json_loads(bad)
    deep: object = 0
    for _ in range(MAX_RESULT_DEPTH):
        deep = [deep]
    assert check_result_value(deep) is None
    assert "nested" in str(check_result_value([deep]))
    assert "U+D800" in str(check_result_value({"k": ["\ud800"]}))
    assert "U+DFFF" in str(check_result_value({"\udfff": 1}))


def test_namespaces_are_required_unless_explicitly_allowed_missing(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = dict(sandbox.machine.layers)
    broken["namespaces"] = Layer("namespaces", False, "pretend bubblewrap is missing")
    sb = Sandbox(sandbox.policy)
    sb._machine = dataclasses.replace(sandbox.machine, layers=broken, bwrap_args=())
    with pytest.raises(SandboxUnavailable, match="FORMALIST_SANDBOX_ALLOW_MISSING=namespaces"):
        sb.check_ready()
    with pytest.raises(ValueError, match="allow it missing"):
        SandboxPolicy(skip=frozenset({"namespaces"}))
    monkeypatch.setenv("FORMALIST_SANDBOX_ALLOW_MISSING", "namespaces")
    sb = Sandbox(dataclasses.replace(SandboxPolicy.from_env(), limits=sandbox.policy.limits))
    sb._machine = dataclasses.replace(sandbox.machine, layers=broken, bwrap_args=())
    r = sb.run("def main():\n    return 1\n")
    assert r.ok and "namespaces" not in r.layers and "seccomp" in r.layers


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        (
            "import operator, json\nb = operator.attrgetter('__builtins__')(json)\n",
            "`attrgetter` may only",
        ),
        ("import operator\nn = 'x'\nf = operator.attrgetter(n)\n", "`attrgetter` may only"),
        ("import operator\nf = operator.attrgetter('gi_frame.f_back')\n", "`attrgetter` may only"),
        ("import operator\nf = operator.attrgetter\n", "`attrgetter` may only"),
        ("from operator import methodcaller as m\n", "under another name"),
        ("import operator\nf = operator.methodcaller('format', 1)\n", "`methodcaller` may only"),
        ("import string\nf = string.Formatter()\n", "attribute `.Formatter`"),
        ("from string import Formatter\n", "importing `Formatter`"),
        ("import typing\nh = typing.get_type_hints\n", "attribute `.get_type_hints`"),
        ("s = '{0:{1.__globals__}}'.format(1, 2)\n", "reaches into attributes"),
        ("s = '{0:{1:{2.x}}}'\n", "reaches into attributes"),
        ("t = 'a'\ns = t.format(1)\n", "`.format` is allowed only on a literal"),
        ("s = str.format('{}', 1)\n", "`.format` is allowed only on a literal"),
        ("def f(x: '().__class__'):\n    pass\n", "in a string annotation"),
        ("def f() -> 'list[__import__]':\n    pass\n", "in a string annotation"),
        ("import dataclasses\nm = dataclasses.inspect\n", "attribute `.inspect`"),
        ("import json.tool\n", "importing `json.tool` is not allowed"),
        (
            "def f(g):\n    match g:\n        case object(__globals__=x):\n            return x\n",
            "class pattern reads the attribute `__globals__`",
        ),
    ],
)
def test_static_check_closes_string_keyed_getters(code: str, fragment: str) -> None:
    found = check_source(code)
    assert any(fragment in d.render() for d in found), [d.render() for d in found]


def test_static_check_still_passes_literal_getters_and_templates() -> None:
    code = (
        "import operator\nfrom operator import attrgetter\n"
        "def f(xs: 'list[int]') -> str:\n"
        "    key = operator.attrgetter('real', 'imag')\n"
        "    g = attrgetter('numerator')\n"
        "    up = operator.methodcaller('upper')\n"
        "    return '{0:>{1}}'.format(up('a'), 3) + f'{len(xs)}' + '{}'.format(key(1))\n"
    )
    assert check_source(code) == []


def test_a_reply_over_the_result_limit_is_refused_by_the_host(sandbox: Sandbox) -> None:
    """The child checks the size, but the reply is the tool's to write: the host checks too."""
    value = b'"' + b"x" * 5000 + b'"'
    reply = b'{"status": "ok", "value": ' + value + b"}"
    r = sandbox._read_reply(reply, 0, "", result_bytes=1000)
    assert r.status is S.BAD_RESULT and "1,000-byte limit" in r.message
    assert sandbox._read_reply(reply, 0, "", result_bytes=10_000).ok
