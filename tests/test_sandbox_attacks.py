"""The attack suite: code a hostile or broken tool might run, each asserted to fail with the
service process unharmed.

Every attack runs twice where it is quick: ``guarded`` (the default sandbox: static check,
restricted builtins, every process layer) and ``raw`` (static check and Python-level guards off),
which shows the process layers hold by themselves: the Python-level rules give readable errors,
the kernel is the boundary. Slow attacks (those that run into the CPU or wall-clock limit) run raw
only; the guarded sandbox adds nothing to them.

Each attack's ``main(ctx)`` tries to reach a goal (a marker file written, a secret read, a signal
delivered...) that the test checks from outside.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tool_maker.layers import SandboxUnavailable
from tool_maker.sandbox import Sandbox, SandboxLimits, SandboxPolicy, SandboxResult, SandboxStatus

SECRET = "sk-formalist-FAKE-0123456789abcdef"
LIMITS = SandboxLimits(wall_s=2.0, cpu_s=1, memory_mb=256)
S = SandboxStatus


def _sandbox(**kw: Any) -> Sandbox:
    sb = Sandbox(SandboxPolicy(limits=LIMITS, **kw))
    try:
        sb.check_ready()
    except SandboxUnavailable as e:
        pytest.skip(f"the sandbox cannot run on this machine: {e}")
    return sb


@pytest.fixture(scope="module")
def guarded() -> Sandbox:
    return _sandbox()


@pytest.fixture(scope="module")
def raw() -> Sandbox:
    return _sandbox(static_check=False, python_guards=False)


@dataclass
class World:
    """What the attacks aim at, outside the sandbox."""

    marker: Path  # a file in a world-writable folder: no attack may create it
    outside: Path  # a world-readable file outside the sandbox's working directory
    port: int  # a loopback port the test listens on
    listener: socket.socket
    signals: list[int] = field(default_factory=list)

    def ctx(self) -> dict[str, Any]:
        return {
            "marker": str(self.marker),
            "outside": str(self.outside),
            "parent": os.getpid(),
            "port": self.port,
            "folder": str(self.marker.parent),
        }

    def accepted_connection(self) -> bool:
        self.listener.setblocking(False)
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True


def _children() -> set[int]:
    me, out = os.getpid(), set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                out.add(int(d.name))
    return out


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    folder = Path(tempfile.mkdtemp(prefix="formalist-attack-"))
    folder.chmod(0o777)  # world-writable: only the sandbox stops a write here
    outside = folder / "secret.txt"
    outside.write_text(SECRET)
    outside.chmod(0o644)  # world-readable: only the sandbox stops a read
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    w = World(folder / "pwned", outside, listener.getsockname()[1], listener)
    received: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda n, f: received.append(n))
    w.signals = received
    before_children = _children()
    env_before = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    cwd_before = os.getcwd()
    dumps, sqrt, system = json.dumps, math.sqrt, os.system
    try:
        yield w
        # The service process is unharmed: alive (we are here), same environment, same working
        # directory, modules unpatched, no signal received, no child left behind, no file made.
        assert {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"} == env_before
        assert os.getcwd() == cwd_before
        assert (json.dumps, math.sqrt, os.system) == (dumps, sqrt, system)
        assert json.dumps([1]) == "[1]"
        assert received == [], "a signal reached the service process"
        assert _children() <= before_children, "a sandbox process was left running"
        assert sorted(p.name for p in folder.iterdir()) == ["secret.txt"]
        assert outside.read_text() == SECRET
    finally:
        signal.signal(signal.SIGUSR1, old)
        listener.close()
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


def _value_has(r: SandboxResult, text: str) -> bool:
    return r.ok and text in json.dumps(r.value)


@dataclass(frozen=True)
class Attack:
    id: str
    code: str
    # did the attack reach its goal? (checked on top of the marker/signal/connection checks)
    won: Callable[[SandboxResult], bool] = lambda r: False
    static: bool = True  # the static check refuses it
    raw_status: frozenset[SandboxStatus] | None = None  # the status the raw run must end with
    slow: bool = False  # runs into a CPU or wall limit: raw only
    needs: str = ""  # "files": the read-confinement layers (namespaces or landlock)


def _got_secret(r: SandboxResult) -> bool:
    return _value_has(r, SECRET) or _value_has(r, "root:")


def _said_done(r: SandboxResult) -> bool:
    return r.ok and r.value not in (None, False, 0, -1) and "denied" not in json.dumps(r.value)


ATTACKS = [
    Attack(
        "read /etc/shadow",
        "def main(ctx):\n    return open('/etc/shadow').read()\n",
        _got_secret,
    ),
    Attack(
        "read a world-readable file outside the working directory",
        "def main(ctx):\n    return open(ctx['outside']).read()\n",
        _got_secret,
        needs="files",
    ),
    Attack(
        "read /etc/passwd",
        "def main(ctx):\n    return open('/etc/passwd').read()\n",
        _got_secret,
        needs="files",
    ),
    Attack(
        "write a file outside the working directory",
        "def main(ctx):\n    with open(ctx['marker'], 'w') as f:\n        f.write('x')\n    return 'written'\n",
        _said_done,
    ),
    Attack(
        "write in the working directory",
        "def main(ctx):\n    with open('scratch.txt', 'w') as f:\n        f.write('x')\n    return 'written'\n",
        _said_done,
    ),
    Attack(
        "symlink escape",
        "import os\ndef main(ctx):\n    os.symlink(ctx['outside'], 'link')\n    return open('link').read()\n",
        _got_secret,
    ),
    Attack(
        "../ escape",
        "import os\ndef main(ctx):\n"
        "    up = '../' * 20\n"
        "    return [open(up + 'etc/shadow').read(), open(up + ctx['outside'].lstrip('/')).read()]\n",
        _got_secret,
        static=True,
    ),
    Attack(
        "read the environment",
        "import os\ndef main(ctx):\n    return dict(os.environ)\n",
        lambda r: _value_has(r, SECRET),
    ),
    Attack(
        "read the parent's environment through /proc",
        "import os\ndef main(ctx):\n"
        "    out = []\n"
        "    for pid in (ctx['parent'], os.getppid(), 1):\n"
        "        try:\n"
        "            out.append(open('/proc/%d/environ' % pid, 'rb').read().decode('latin-1'))\n"
        "        except OSError as e:\n"
        "            out.append('denied: %s' % e)\n"
        "    return out\n",
        lambda r: _value_has(r, SECRET),
    ),
    Attack(
        "open a socket to the service's loopback port",
        "import socket\ndef main(ctx):\n"
        "    s = socket.create_connection(('127.0.0.1', ctx['port']), timeout=1)\n"
        "    return 'connected'\n",
        _said_done,
    ),
    Attack(
        "resolve a name (DNS)",
        "import socket\ndef main(ctx):\n    return socket.getaddrinfo('example.com', 80)\n",
        _said_done,
    ),
    Attack(
        "os.system",
        "import os\ndef main(ctx):\n    return os.system('touch ' + ctx['marker']) == 0\n",
        _said_done,
    ),
    Attack(
        "subprocess",
        "import subprocess\ndef main(ctx):\n"
        "    return subprocess.run(['touch', ctx['marker']]).returncode == 0\n",
        _said_done,
    ),
    Attack(
        "os.fork",
        "import os\ndef main(ctx):\n    pid = os.fork()\n    return 'forked %d' % pid\n",
        _said_done,
    ),
    Attack(
        "multiprocessing",
        "import multiprocessing\ndef main(ctx):\n"
        "    p = multiprocessing.Process(target=print)\n    p.start()\n    p.join()\n    return 'started'\n",
        _said_done,
    ),
    Attack(
        "fork bomb",
        "import os\ndef main(ctx):\n    n = 0\n    while True:\n        os.fork()\n        n += 1\n",
        _said_done,
    ),
    Attack(
        "thread bomb",
        "import threading, time\ndef main(ctx):\n"
        "    n = 0\n"
        "    for _ in range(100000):\n"
        "        threading.Thread(target=time.sleep, args=(10,)).start()\n"
        "        n += 1\n"
        "    return n\n",
        _said_done,
    ),
    Attack(
        "while True",
        "def main(ctx):\n    while True:\n        pass\n",
        static=False,
        raw_status=frozenset({S.CPU_LIMIT}),
        slow=True,
    ),
    Attack(
        "sleep past the wall-clock limit",
        "import time\ndef main(ctx):\n    time.sleep(60)\n",
        raw_status=frozenset({S.TIMEOUT}),
        slow=True,
    ),
    Attack(
        "catastrophic regex backtracking",
        "import re\ndef main(ctx):\n    return bool(re.match(r'(a+)+$', 'a' * 64 + 'b'))\n",
        static=False,
        raw_status=frozenset({S.CPU_LIMIT}),
        slow=True,
    ),
    Attack(
        "10**10**8",
        "def main(ctx):\n    return len(str(10**10**8))\n",
        static=False,
        raw_status=frozenset({S.CPU_LIMIT}),
        slow=True,
    ),
    Attack(
        "allocate 10 GB",
        "def main(ctx):\n    return len(bytearray(10 * 1024**3))\n",
        static=False,
        raw_status=frozenset({S.MEMORY_LIMIT}),
    ),
    Attack(
        "print 1 GB",
        "def main(ctx):\n    for _ in range(1024):\n        print('x' * (1 << 20))\n    return 'printed'\n",
        static=False,
        raw_status=frozenset({S.OUTPUT_LIMIT}),
    ),
    Attack(
        "fill the disk",
        "def main(ctx):\n"
        "    written = 0\n"
        "    for folder in ('.', '/tmp', '/var/tmp', '/dev/shm', ctx['folder']):\n"
        "        for i in range(1000):\n"
        "            try:\n"
        "                with open('%s/fill%d' % (folder, i), 'wb') as f:\n"
        "                    written += f.write(b'x' * (1 << 20))\n"
        "            except OSError:\n"
        "                break\n"
        "    return written\n",
        _said_done,
    ),
    Attack(
        "import ctypes",
        "import ctypes\ndef main(ctx):\n"
        "    libc = ctypes.CDLL(None)\n"
        "    return libc.system(('touch ' + ctx['marker']).encode()) == 0\n",
        _said_done,
    ),
    Attack(
        "x32 syscall through ctypes (seccomp architecture check)",
        "import ctypes\ndef main(ctx):\n"
        "    libc = ctypes.CDLL(None)\n"
        "    return libc.syscall(0x40000000 | 57) > 0\n",  # fork in the x32 table
        _said_done,
    ),
    Attack(
        "import mmap",
        "import mmap\ndef main(ctx):\n    m = mmap.mmap(-1, 10 * 1024**3)\n    return len(m)\n",
        _said_done,
    ),
    Attack(
        "import importlib",
        "import importlib\ndef main(ctx):\n"
        "    return importlib.import_module('os').system('touch ' + ctx['marker']) == 0\n",
        _said_done,
    ),
    Attack(
        "import sys",
        "import sys\ndef main(ctx):\n"
        "    os = sys.modules.get('os') or __import__('os')\n"
        "    return os.system('touch ' + ctx['marker']) == 0\n",
        _said_done,
    ),
    Attack(
        "import builtins",
        "import builtins\ndef main(ctx):\n    return builtins.open('/etc/shadow').read()\n",
        _got_secret,
    ),
    Attack(
        "__import__('o'+'s')",
        "def main(ctx):\n"
        "    os = __import__('o' + 's')\n"
        "    return [os.system('touch ' + ctx['marker']), dict(os.environ)]\n",
        lambda r: _value_has(r, SECRET) or (r.ok and r.value[0] == 0),
    ),
    Attack(
        "().__class__.__base__.__subclasses__()",
        "def main(ctx):\n"
        "    for cls in ().__class__.__base__.__subclasses__():\n"
        "        if cls.__name__ == '_wrap_close':\n"
        "            system = cls.__init__.__globals__['system']\n"
        "            return system('touch ' + ctx['marker']) == 0\n"
        "    return 'not found'\n",
        lambda r: r.ok and r.value is True,
    ),
    Attack(
        "__builtins__ through a generator frame",
        "def main(ctx):\n"
        "    g = (x for x in [1])\n"
        "    b = g.gi_frame.f_builtins\n"
        "    os = b['__import__']('os')\n"
        "    return [os.system('touch ' + ctx['marker']), b['open']('/etc/shadow').read()]\n",
        lambda r: _got_secret(r) or (r.ok and r.value[0] == 0),
    ),
    Attack(
        "__builtins__ through a traceback frame",
        "def main(ctx):\n"
        "    try:\n"
        "        1 / 0\n"
        "    except ZeroDivisionError as e:\n"
        "        f = e.__traceback__.tb_frame\n"
        "    while f.f_back is not None:\n"
        "        f = f.f_back\n"
        "    os = f.f_globals['os']\n"
        "    return [os.system('touch ' + ctx['marker']), dict(os.environ)]\n",
        lambda r: _value_has(r, SECRET) or (r.ok and r.value[0] == 0),
    ),
    Attack(
        "str.format field access",
        "def main(ctx):\n    return '{0.__globals__[__builtins__]}'.format(main)\n",
        _got_secret,
    ),
    Attack(
        "pickle.loads",
        "import pickle\ndef main(ctx):\n"
        "    payload = b'cos\\nsystem\\n(S' + repr('touch ' + ctx['marker']).encode() + b'\\ntR.'\n"
        "    return pickle.loads(payload) == 0\n",
        _said_done,
    ),
    Attack(
        "kill the parent",
        "import os, signal\ndef main(ctx):\n"
        "    hits = 0\n"
        "    for target in (ctx['parent'], os.getppid(), -1, -os.getpgid(0)):\n"
        "        try:\n"
        "            os.kill(target, signal.SIGUSR1)\n"
        "            hits += 1\n"
        "        except OSError:\n"
        "            pass\n"
        "    return hits\n",
        _said_done,
    ),
    Attack(
        "raise the CPU limit, then spin",
        "import resource\ndef main(ctx):\n"
        "    try:\n"
        "        resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "    except (OSError, ValueError):\n"
        "        pass\n"
        "    while True:\n"
        "        pass\n",
        raw_status=frozenset({S.CPU_LIMIT}),
        slow=True,
    ),
    Attack(
        "deep recursion",
        "def f(n):\n    return f(n + 1) + 1\ndef main(ctx):\n    return f(0)\n",
        static=False,
        raw_status=frozenset({S.ERROR}),
    ),
    Attack(
        "deep recursion with the recursion limit raised",
        "import sys\nsys.setrecursionlimit(10**8)\n"
        "def f(n):\n    return f(n + 1) + 1\ndef main(ctx):\n    return f(0)\n",
        raw_status=frozenset({S.CRASHED, S.CPU_LIMIT, S.MEMORY_LIMIT, S.ERROR}),
        slow=True,
    ),
    Attack(
        "a non-JSON result",
        "def main(ctx):\n    return {1, 2, 3}\n",
        static=False,
        raw_status=frozenset({S.BAD_RESULT}),
    ),
    Attack(
        "a NaN result",
        "def main(ctx):\n    return float('nan')\n",
        static=False,
        raw_status=frozenset({S.BAD_RESULT}),
    ),
    Attack(
        "a 100 MB result",
        "def main(ctx):\n    return 'x' * (100 * 1024 * 1024)\n",
        static=False,
        raw_status=frozenset({S.BAD_RESULT, S.MEMORY_LIMIT}),
    ),
    Attack(
        "forge the reply on a raw descriptor",
        "import os\ndef main(ctx):\n"
        "    for fd in range(3, 16):\n"
        "        try:\n"
        '            os.write(fd, b\'{"status": "ok", "value": "forged"}\' * 100000)\n'
        "        except OSError:\n"
        "            pass\n"
        "    return 'done'\n",
        lambda r: r.ok and r.value == "forged",
    ),
]


def _params() -> list[Any]:
    out = []
    for a in ATTACKS:
        modes = ("raw",) if a.slow else ("guarded", "raw")
        out += [pytest.param(a, m, id=f"{m}: {a.id}") for m in modes]
    return out


def test_there_are_at_least_thirty_attacks() -> None:
    assert len(ATTACKS) >= 30


@pytest.mark.parametrize(("attack", "mode"), _params())
def test_attack_fails(
    attack: Attack, mode: str, world: World, request: pytest.FixtureRequest
) -> None:
    sb: Sandbox = request.getfixturevalue(mode)
    if attack.needs == "files":
        m = sb.machine.layers
        if not (m["namespaces"].available or m["landlock"].available):
            pytest.skip(
                "reads of world-readable files are confined only by bubblewrap's mount namespace "
                "or Landlock, and this kernel offers neither"
            )
    r = sb.run(attack.code, "main", [world.ctx()])
    assert not attack.won(r), f"the attack won: {r.describe()}"
    assert not world.marker.exists(), "the attack wrote the marker file"
    assert not world.accepted_connection(), "the attack reached the service's port"
    if mode == "guarded" and attack.static:
        assert r.status is S.REFUSED, r.describe()
    elif mode == "raw" and attack.raw_status is not None:
        assert r.status in attack.raw_status, r.describe()
    if mode == "raw":
        assert "seccomp" in r.layers and "rlimits" in r.layers


def test_monkey_patching_does_not_reach_the_next_call(raw: Sandbox, world: World) -> None:
    patch = (
        "import json, math\n"
        "def main(ctx):\n"
        "    json.dumps = lambda *a, **k: '\"patched\"'\n"
        "    math.sqrt = lambda x: -1.0\n"
        "    return 'patched'\n"
    )
    check = "import json, math\ndef main(ctx):\n    return [math.sqrt(16), json.dumps([1])]\n"
    first = raw.run(patch, "main", [world.ctx()])
    second = raw.run(check, "main", [world.ctx()])
    assert second.ok and second.value == [4.0, "[1]"], second.describe()
    assert first.status in (S.OK, S.BAD_RESULT)


def test_wall_clock_kill_reaps_the_whole_group(raw: Sandbox, world: World) -> None:
    """A tool blocked in a sleep is killed at the wall-clock limit, and nothing is left."""
    r = raw.run(
        "import time\ndef main(ctx):\n    time.sleep(30)\n",
        "main",
        [world.ctx()],
        limits=SandboxLimits(wall_s=0.5),
    )
    assert r.status is S.TIMEOUT
    assert r.wall_s < 3


def test_closing_the_pipes_does_not_end_the_watch(raw: Sandbox, world: World) -> None:
    """A tool that closes its output and reply descriptors and goes on running is still held to
    the limits (here the wall clock) and then killed."""
    code = (
        "import os, time\n"
        "def main(ctx):\n"
        "    for fd in range(0, 32):\n"
        "        try:\n"
        "            os.close(fd)\n"
        "        except OSError:\n"
        "            pass\n"
        "    time.sleep(30)\n"
    )
    r = raw.run(code, "main", [world.ctx()], limits=SandboxLimits(wall_s=0.5))
    assert r.status is S.TIMEOUT, r.describe()
