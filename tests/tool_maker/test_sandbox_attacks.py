"""The attack suite: code a hostile or broken tool might run, each asserted to fail with the
service process unharmed.

Every quick attack runs in three modes: ``guarded`` (the full sandbox: static check, the child's
Python guards, every process layer), ``nostatic`` (the static check off: the child's guards and the
kernel layers), and ``raw`` (static check and Python guards off: the kernel layers alone). Attacks
on kernel objects that would outlive a call (IPC, xattrs, signals, locks) also run ``nons``: raw,
without the namespaces layer (an explicit opt-in), where only seccomp stands in their way. Slow
attacks (those that run into the CPU or wall-clock limit) run raw only.

Each attack's ``main(ctx)`` tries to reach a goal (a marker file written, a secret read, a signal
delivered, an IPC object or xattr left behind...) that the test checks from outside (``won``).
Attacks that aim at the interpreter (the real ``__import__``, ``os``, frames) have a ``reach``
check, which must stay false wherever the Python guards are on. Every run is also checked for a
forged reply: the host must report the layers it knows (never the child's word), never blame the
machine for a reply the tool wrote, and never accept a value JSON cannot hold.

``test_zz_summary`` (and the terminal summary at the end of the module) gives attacks / escapes /
forged replies per mode.
"""

from __future__ import annotations

import json
import math
import os
import pwd
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tool_maker.layers import SandboxUnavailable
from tool_maker.sandbox import (
    Sandbox,
    SandboxLimits,
    SandboxPolicy,
    SandboxResult,
    SandboxStatus,
    check_result_value,
)

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
def nostatic() -> Sandbox:
    return _sandbox(static_check=False)


@pytest.fixture(scope="module")
def raw() -> Sandbox:
    return _sandbox(static_check=False, python_guards=False)


@pytest.fixture(scope="module")
def nons() -> Sandbox:
    sb = _sandbox(
        static_check=False,
        python_guards=False,
        skip=frozenset({"namespaces"}),
        allow_missing=frozenset({"namespaces"}),
    )
    if not sb.machine.layers["landlock"].available:
        pytest.skip("without namespaces the sandbox needs Landlock here (the service's own uid)")
    return sb


@dataclass
class World:
    """What the attacks aim at, outside the sandbox."""

    marker: Path  # a file in a world-writable folder: no attack may create it
    outside: Path  # a world-readable file outside the sandbox's working directory
    writable: Path  # a world-writable file: no attack may change it or its attributes
    port: int  # a loopback port the test listens on
    listener: socket.socket
    signals: list[int] = field(default_factory=list)

    def ctx(self) -> dict[str, Any]:
        return {
            "marker": str(self.marker),
            "outside": str(self.outside),
            "writable": str(self.writable),
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


def _sandbox_uid() -> int | None:
    """The uid sandbox children run as when it differs from ours (``nobody`` under root): what
    they leave behind is told apart from other processes' by it. None when it is our own."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return None


def _ipc_objects(uid: int | None) -> set[str]:
    """System V IPC objects and POSIX message queues owned by ``uid`` (the sandbox's)."""
    if uid is None:
        return set()
    out = set()
    for kind in ("shm", "msg", "sem"):
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except OSError:
            continue
        header = lines[0].split() if lines else []
        if "uid" not in header:
            continue
        col = header.index("uid")
        out |= {
            f"{kind}:{' '.join(f[:2])}"
            for f in (line.split() for line in lines[1:])
            if len(f) > col and f[col] == str(uid)
        }
    mq = Path("/dev/mqueue")
    if mq.is_dir():
        out |= {f"mq:{p.name}" for p in mq.iterdir() if _owner(p) == uid}
    return out


def _owner(p: Path) -> int | None:
    try:
        return p.stat().st_uid
    except OSError:
        return None


def _shared_files(uid: int | None) -> set[str]:
    """Files owned by ``uid`` (the sandbox's) in the folders every process shares when there are
    no namespaces."""
    if uid is None:
        return set()
    out = set()
    for folder in ("/tmp", "/dev/shm", "/var/tmp"):
        try:
            out |= {str(p) for p in Path(folder).iterdir() if _owner(p) == uid}
        except OSError:
            pass
    return out


def _xattrs(path: Path) -> list[str]:
    try:
        return os.listxattr(path)
    except OSError:
        return []


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    folder = Path(tempfile.mkdtemp(prefix="formalist-attack-"))
    folder.chmod(0o777)  # world-writable: only the sandbox stops a write here
    outside = folder / "secret.txt"
    outside.write_text(SECRET)
    outside.chmod(0o644)  # world-readable: only the sandbox stops a read
    writable = folder / "shared.txt"
    writable.write_text("unchanged")
    writable.chmod(0o666)  # world-writable: only the sandbox stops a write
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    w = World(folder / "pwned", outside, writable, listener.getsockname()[1], listener)
    received: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda n, f: received.append(n))
    w.signals = received
    before_children = _children()
    env_before = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    cwd_before = os.getcwd()
    uid = _sandbox_uid()
    ipc_before, shared_before = _ipc_objects(uid), _shared_files(uid)
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
        assert sorted(p.name for p in folder.iterdir()) == ["secret.txt", "shared.txt"]
        assert outside.read_text() == SECRET and writable.read_text() == "unchanged"
        assert _xattrs(outside) == _xattrs(writable) == _xattrs(folder) == []
        assert _ipc_objects(uid) <= ipc_before, "an IPC object outlived the call"
        new_files = _shared_files(uid) - shared_before
        assert not new_files, f"the sandbox left files behind: {new_files}"
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
    # did it reach the interpreter (os, the real __import__, frames)? Must stay false wherever
    # the child's Python guards are on (guarded, nostatic); raw has no guards to get past.
    reach: Callable[[SandboxResult], bool] = lambda r: False
    guards_stop: bool = True  # the child's guards stop it even with the static check off
    nons: bool = False  # also run without the namespaces layer (kernel objects, signals)
    family: str = "escape"  # escape, forgery, data, reach, kernel


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
        raw_status=frozenset({S.BAD_RESULT, S.MEMORY_LIMIT, S.CPU_LIMIT, S.TIMEOUT}),
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


def _reached(r: SandboxResult) -> bool:
    """The result or the error shows the interpreter's insides: the real import, os, sys,
    ctypes, frames or code objects."""
    text = (json.dumps(r.value) if r.ok else "") + r.message
    marks = (
        "<module 'os'",
        "<module 'posix'",
        "<module 'sys'",
        "<module 'ctypes'",
        "<module 'builtins'",
        "<module 'inspect'",
        "<module 'gc'",
        "<built-in function __import__>",
        "<built-in function system>",
        "<frame at",
        "<code object",
    )
    return any(m in text for m in marks)


def _listed_ok(r: SandboxResult) -> bool:
    """The attack returns a list with an entry per attempt: "ok..." where the kernel let it."""
    return r.ok and isinstance(r.value, list) and any(str(x).startswith("ok") for x in r.value)


# A helper the kernel-object attacks share: try each call, note "ok" or "denied".
_TRY = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.syscall.restype = ctypes.c_long\n"
    "ARCH = os.uname().machine\n"
    "def attempt(out, label, fn, *args):\n"
    "    try:\n"
    "        rc = fn(*args)\n"
    "    except OSError as e:\n"
    "        out.append('denied %s: %s' % (label, e))\n"
    "        return None\n"
    "    if isinstance(rc, int) and rc < 0:\n"
    "        out.append('denied %s: errno %d' % (label, ctypes.get_errno()))\n"
    "        return None\n"
    "    out.append('ok %s: %r' % (label, rc))\n"
    "    return rc\n"
)

ATTACKS += [
    # -- forged replies: the reply is written by code the tool can reach -----------------------
    Attack(
        "patch json.dumps to forge the reply (status, layers)",
        "import json\n"
        "def forged(*a, **k):\n"
        '    return \'{"status": "ok", "value": "forged", "layers": ["magic"]}\'\n'
        "def main(ctx):\n"
        "    json.dumps = forged\n"
        "    return 'honest'\n",
        static=False,
        family="forgery",
    ),
    Attack(
        "patch json.dumps to forge a refusal that blames the machine",
        "import json\n"
        "def forged(*a, **k):\n"
        '    return \'{"status": "refused", "message": "a sandbox layer failed: no seccomp"}\'\n'
        "def main(ctx):\n"
        "    json.dumps = forged\n"
        "    return 'honest'\n",
        static=False,
        family="forgery",
    ),
    Attack(
        "write a forged refusal on the reply descriptor and exit",
        "import os\ndef main(ctx):\n"
        "    for fd in range(3, 16):\n"
        "        try:\n"
        '            os.write(fd, b\'{"status": "refused", "message": "no seccomp", "layers": []}\')\n'
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n",
        family="forgery",
    ),
    Attack(
        "write a forged setup line (a layer that failed) and exit",
        "import os\ndef main(ctx):\n"
        "    for fd in range(3, 16):\n"
        "        try:\n"
        '            os.write(fd, b\'\\n{"setup": "failed", "layer": "seccomp", "message": "x"}\\n\')\n'
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n",
        family="forgery",
    ),
    Attack(
        "find the reply under construction through gc and rewrite it",
        "import gc\ndef main(ctx):\n"
        "    n = 0\n"
        "    for o in gc.get_objects():\n"
        "        if isinstance(o, dict) and 'status' in o and 'type' in o:\n"
        "            o.update(status='refused', message='landlock failed', layers=['magic'])\n"
        "            n += 1\n"
        "        if isinstance(o, list) and 'rlimits' in o:\n"
        "            o.append('magic')\n"
        "            n += 1\n"
        "    return n\n",
        family="forgery",
    ),
    Attack(
        "forge a reply with NaN and Infinity",
        "import os\ndef main(ctx):\n"
        "    for fd in range(3, 16):\n"
        "        try:\n"
        '            os.write(fd, b\'{"status": "ok", "value": [NaN, Infinity, -Infinity, 1e999]}\')\n'
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n",
        family="forgery",
    ),
    Attack(
        "forge a reply with a lone surrogate",
        "import os\ndef main(ctx):\n"
        "    for fd in range(3, 16):\n"
        "        try:\n"
        '            os.write(fd, b\'{"status": "ok", "value": {"\\\\udc80": "\\\\ud800"}}\')\n'
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n",
        family="forgery",
    ),
    Attack(
        "forge an error reply with a huge type and message, a surrogate and a bool line",
        "import os\ndef main(ctx):\n"
        "    big = 'E' * 100000\n"
        '    text = \'{"status": "error", "type": "%s", "message": "\\\\ud800%s", "line": true}\' % (big, big)\n'
        "    for fd in range(3, 16):\n"
        "        try:\n"
        "            os.write(fd, text.encode())\n"
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n",
        family="forgery",
    ),
    Attack(
        "forge a reply that is not UTF-8",
        "import os\ndef main(ctx):\n"
        "    for fd in range(3, 16):\n"
        "        try:\n"
        '            os.write(fd, b\'{"status": "ok", "value": "\\xff\\xfe"}\')\n'
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n",
        family="forgery",
    ),
    Attack(
        "forge a reply nested 100000 deep",
        "import os\ndef main(ctx):\n"
        "    text = b'{\"status\": \"ok\", \"value\": ' + b'[' * 100000 + b']' * 100000 + b'}'\n"
        "    for fd in range(3, 16):\n"
        "        try:\n"
        "            os.write(fd, text)\n"
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n",
        family="forgery",
    ),
    Attack(
        "forge a reply with a 100000-digit integer",
        "import os\ndef main(ctx):\n"
        "    text = b'{\"status\": \"ok\", \"value\": ' + b'9' * 100000 + b'}'\n"
        "    for fd in range(3, 16):\n"
        "        try:\n"
        "            os.write(fd, text)\n"
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n",
        family="forgery",
    ),
    Attack(
        "forge an unknown reply status",
        "import os\ndef main(ctx):\n"
        "    for fd in range(3, 16):\n"
        "        try:\n"
        '            os.write(fd, b\'{"status": "verified", "value": 1, "layers": ["magic"]}\')\n'
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n",
        family="forgery",
    ),
    # -- results that JSON cannot hold --------------------------------------------------------
    Attack(
        "an Infinity result",
        "def main(ctx):\n    return [1.0, float('inf')]\n",
        static=False,
        raw_status=frozenset({S.BAD_RESULT}),
        family="data",
    ),
    Attack(
        "a lone surrogate in a result string",
        "def main(ctx):\n    return {'text': 'a' + chr(0xD800) + 'b'}\n",
        static=False,
        raw_status=frozenset({S.BAD_RESULT}),
        family="data",
    ),
    Attack(
        "a lone surrogate in a result key",
        "def main(ctx):\n    return {chr(0xDFFF): 1}\n",
        static=False,
        raw_status=frozenset({S.BAD_RESULT}),
        family="data",
    ),
    Attack(
        "a result nested 150 deep",
        "def main(ctx):\n    v = 1\n    for _ in range(150):\n        v = [v]\n    return v\n",
        static=False,
        raw_status=frozenset({S.BAD_RESULT}),
        family="data",
    ),
    Attack(
        "a 200 KB result nested 100000 deep",
        "def main(ctx):\n    v = []\n    for _ in range(100000):\n        v = [v]\n    return v\n",
        static=False,
        raw_status=frozenset({S.BAD_RESULT, S.ERROR}),
        family="data",
    ),
    Attack(
        "an exception whose message holds a lone surrogate",
        "def main(ctx):\n    raise ValueError('bad ' + chr(0xD800))\n",
        static=False,
        raw_status=frozenset({S.ERROR}),
        family="data",
    ),
    # -- the static check and the child's guards: string-keyed ways to attributes and code ----
    Attack(
        "operator.attrgetter('__builtins__') on a module",
        "import operator, json\ndef main(ctx):\n"
        "    b = operator.attrgetter('__builtins__')(json)\n"
        "    os = b['__import__']('os')\n"
        "    return [repr(os), os.system('touch ' + ctx['marker'])]\n",
        lambda r: r.ok and r.value[1] == 0,
        reach=_reached,
        family="reach",
    ),
    Attack(
        "operator.attrgetter with a name built at run time",
        "import operator, json\ndef main(ctx):\n"
        "    name = '_' * 2 + 'builtins' + '_' * 2\n"
        "    b = operator.attrgetter(name)(json)\n"
        "    return repr(b['__import__']('os'))\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "attrgetter imported under another name",
        "from operator import attrgetter as pick\ndef main(ctx):\n"
        "    def f():\n        pass\n"
        "    g = pick('_' + '_globals_' + '_')(f)\n"
        "    return repr(g['__builtins__'])\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "attrgetter to a generator's frame (no underscore in the path)",
        "import operator\ndef main(ctx):\n"
        "    g = (x for x in [1])\n"
        "    return repr(operator.attrgetter('gi_frame')(g))\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "methodcaller('__subclasses__') to reach os",
        "import operator\ndef main(ctx):\n"
        "    obj = operator.attrgetter('__class__.__base__')(())\n"
        "    for cls in operator.methodcaller('__subclasses__')(obj):\n"
        "        if cls.__name__ == '_wrap_close':\n"
        "            return repr(operator.attrgetter('__init__.__globals__')(cls)['system'])\n"
        "    return 'not found'\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "methodcaller('format') on a template built at run time",
        "import operator\ndef main(ctx):\n"
        "    def f():\n        pass\n"
        "    return operator.methodcaller('format', f)('{0.' + '__globals__[__builtins__]}')\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "attrgetter('format') on a template built at run time",
        "import operator\ndef main(ctx):\n"
        "    def f():\n        pass\n"
        "    return operator.attrgetter('format')('{0.' + '__globals__[__builtins__]}')(f)\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "string.Formatter().get_field",
        "import string\ndef main(ctx):\n"
        "    def f():\n        pass\n"
        "    obj, _ = string.Formatter().get_field('0.__globals__[__builtins__]', [f], {})\n"
        "    return repr(obj['__import__']('os'))\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "string.Formatter().vformat",
        "from string import Formatter\ndef main(ctx):\n"
        "    def f():\n        pass\n"
        "    return Formatter().vformat('{0.__globals__[__builtins__]}', [f], {})\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "a replacement field nested in a format spec",
        "def main(ctx):\n"
        "    def f():\n        pass\n"
        "    return '{0:{1.__globals__[__builtins__]}}'.format(1, f)\n",
        reach=_reached,
        guards_stop=False,  # str.format is C: only the static check reads the template
        family="reach",
    ),
    Attack(
        "a template built at run time, then .format",
        "def main(ctx):\n"
        "    def f():\n        pass\n"
        "    template = '{0.' + '_' * 2 + 'globals__[__builtins__]}'\n"
        "    return template.format(f)\n",
        reach=_reached,
        guards_stop=False,  # str.format is C: only the static check sees the call
        family="reach",
    ),
    Attack(
        "str.format called through the class",
        "def main(ctx):\n"
        "    def f():\n        pass\n"
        "    return str.format('{0.' + '__globals__}', f)\n",
        reach=_reached,
        guards_stop=False,
        family="reach",
    ),
    Attack(
        "typing.get_type_hints evaluates a string annotation",
        "import typing\n"
        "def f(x: '().__class__.__base__.__subclasses__()'):\n    pass\n"
        "def main(ctx):\n"
        "    return repr(typing.get_type_hints(f))[:3000]\n",
        reach=lambda r: _reached(r) or _value_has(r, "_wrap_close"),
        family="reach",
    ),
    Attack(
        "functools.singledispatch evaluates an annotation built at run time",
        "import functools\n"
        "CODE = '()' + '.__class__.__base__.__subclasses__()'\n"
        "@functools.singledispatch\ndef g(x):\n    return 0\n"
        "def main(ctx):\n"
        "    def h(x: CODE):\n        return 1\n"
        "    g.register(h)\n"
        "    return 'registered'\n",
        reach=lambda r: r.ok or "_wrap_close" in r.message,
        static=False,  # the annotation is a name: only the child's audit hook sees the compile
        family="reach",
    ),
    Attack(
        "typing.ForwardRef compiles and evaluates a string",
        "import typing\ndef main(ctx):\n"
        "    ref = typing.ForwardRef('().__class__.__base__')\n"
        "    return repr(typing.get_type_hints(type('C', (), {'x': 1})))\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "dataclasses.inspect.getmembers reaches a function's globals",
        "import dataclasses, json\ndef main(ctx):\n"
        "    members = dict(dataclasses.inspect.getmembers(json.dumps))\n"
        "    imp = members['__globals__']['__builtins__']['__import__']\n"
        "    return repr(imp('os'))\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "dataclasses.inspect.currentframe walks up to the child's globals",
        "import dataclasses\ndef main(ctx):\n"
        "    f = dataclasses.inspect.currentframe()\n"
        "    return repr(f.f_back)\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "a module attribute that is another module (re.enum.sys, calendar.datetime...)",
        "import re, calendar, statistics\ndef main(ctx):\n"
        "    found = []\n"
        "    for m in (re.enum, re.functools, calendar.datetime, statistics.random):\n"
        "        found += [repr(v) for v in vars(m).values()]\n"
        "    return [x for x in found if 'module' in x]\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "copy of a module through public attributes (random's hidden os)",
        "import random, operator\ndef main(ctx):\n"
        "    return repr(operator.attrgetter('_os')(random))\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "dunder walk to os through __subclasses__ and __globals__",
        "def main(ctx):\n"
        "    for cls in ().__class__.__base__.__subclasses__():\n"
        "        if cls.__name__ == '_wrap_close':\n"
        "            return repr(cls.__init__.__globals__['system'])\n"
        "    return 'not found'\n",
        reach=_reached,
        guards_stop=False,  # plain attribute syntax: the static check refuses it, then the kernel
        family="reach",
    ),
    Attack(
        "a class pattern that reads __globals__ (match/case)",
        "def main(ctx):\n"
        "    def f():\n        pass\n"
        "    match f:\n"
        "        case object(__globals__={'__builtins__': b}):\n"
        "            return repr(b)\n"
        "    return 'no match'\n",
        reach=lambda r: _reached(r) or _value_has(r, "'open'"),
        guards_stop=False,  # a C-level attribute read: only the static check sees the name
        family="reach",
    ),
    Attack(
        "a submodule of an allowed package that reads files (json.tool)",
        "import json.tool\ndef main(ctx):\n    return repr(json.tool.sys)\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "a submodule of an allowed package by from-import",
        "from json import tool\ndef main(ctx):\n"
        "    return [repr(v) for v in vars(tool).values()]\n",
        reach=_reached,
        static=False,  # `json` is allowed: the child's import refuses `json.tool`
        family="reach",
    ),
    Attack(
        "a traceback's frame to the child's globals",
        "def main(ctx):\n"
        "    try:\n"
        "        1 / 0\n"
        "    except ZeroDivisionError as e:\n"
        "        return repr(e.__traceback__.tb_frame.f_back)\n",
        reach=_reached,
        family="reach",
    ),
    Attack(
        "gi_frame then f_back through attrgetter, to the child's globals",
        "import operator\ndef main(ctx):\n"
        "    g = (x for x in [1])\n"
        "    next(g, None)\n"
        "    return repr(operator.attrgetter('gi_frame.f_back.f_globals')(g))\n",
        reach=_reached,
        family="reach",
    ),
    # -- kernel objects that outlive the call, signals, locks, xattrs (seccomp) -----------------
    Attack(
        "System V shared memory over the memory limit (shmget, shmat, touch 1000 MiB)",
        _TRY + "def main(ctx):\n"
        "    out = []\n"
        "    libc.shmat.restype = ctypes.c_void_p\n"
        "    shmid = attempt(out, 'shmget', libc.shmget, 0, 1000 << 20, 0o1600)\n"
        "    if shmid is not None:\n"
        "        addr = libc.shmat(shmid, None, 0)\n"
        "        if addr not in (None, ctypes.c_void_p(-1).value):\n"
        "            ctypes.memset(addr, 1, 1000 << 20)\n"
        "            out.append('ok attached and touched')\n"
        "    attempt(out, 'shmget keyed', libc.shmget, 0x464D4C, 4096, 0o1666)\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "System V message queue and semaphores left for the next call",
        _TRY + "def main(ctx):\n"
        "    out = []\n"
        "    attempt(out, 'msgget', libc.msgget, 0x464D4C, 0o1666)\n"
        "    attempt(out, 'semget', libc.semget, 0x464D4C, 1, 0o1666)\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "POSIX message queue (mq_open)",
        _TRY + "def main(ctx):\n"
        "    out = []\n"
        "    attempt(out, 'mq_open', libc.mq_open, b'/formalist-attack', os.O_CREAT | os.O_RDWR, 0o666, None)\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "setxattr and getxattr on host files",
        "import os\ndef main(ctx):\n"
        "    out = []\n"
        "    for path in (ctx['writable'], ctx['outside'], ctx['folder']):\n"
        "        for fn, args in ((os.setxattr, (path, 'user.pwned', b'1')), (os.listxattr, (path,))):\n"
        "            try:\n"
        "                out.append('ok %r' % (fn(*args),))\n"
        "            except OSError as e:\n"
        "                out.append('denied %s' % e)\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "setxattrat and getxattrat (Linux 6.13) on host files",
        _TRY + "class Args(ctypes.Structure):\n"
        "    _fields_ = [('value', ctypes.c_uint64), ('size', ctypes.c_uint32), ('flags', ctypes.c_uint32)]\n"
        "def main(ctx):\n"
        "    out = []\n"
        "    val = ctypes.create_string_buffer(b'pwned')\n"
        "    a = Args(ctypes.cast(val, ctypes.c_void_p).value, 5, 0)\n"
        "    for path in (ctx['writable'], ctx['folder']):\n"
        "        attempt(out, 'setxattrat ' + path, libc.syscall, 463, -100, path.encode(), 0,\n"
        "                b'user.pwned', ctypes.byref(a), ctypes.sizeof(a))\n"
        "        attempt(out, 'getxattrat ' + path, libc.syscall, 464, -100, path.encode(), 0,\n"
        "                b'user.pwned', ctypes.byref(a), ctypes.sizeof(a))\n"
        "    attempt(out, 'removexattrat', libc.syscall, 466, -100, ctx['writable'].encode(), 0, b'user.x')\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "fcntl F_SETOWN and F_SETSIG to signal the service",
        "import os, fcntl, signal\ndef main(ctx):\n"
        "    r, w = os.pipe()\n"
        "    out = []\n"
        "    for cmd, arg in ((fcntl.F_SETOWN, ctx['parent']), (10, signal.SIGUSR1),\n"
        "                     (fcntl.F_SETOWN, -os.getpgid(0))):\n"
        "        try:\n"
        "            fcntl.fcntl(r, cmd, arg)\n"
        "            out.append('ok %d' % cmd)\n"
        "        except OSError as e:\n"
        "            out.append('denied %s' % e)\n"
        "    try:\n"
        "        fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC)\n"
        "        os.write(w, b'x')\n"
        "    except OSError as e:\n"
        "        out.append('denied %s' % e)\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "fcntl F_SETOWN_EX and the FIOSETOWN / SIOCSPGRP / FIOASYNC ioctls",
        _TRY + "import fcntl, struct\ndef main(ctx):\n"
        "    r, w = os.pipe()\n"
        "    out = []\n"
        "    owner = struct.pack('ii', 1, ctx['parent'])  # F_OWNER_PID\n"
        "    attempt(out, 'F_SETOWN_EX', fcntl.fcntl, r, 15, owner)\n"
        "    pid = ctypes.c_int(ctx['parent'])\n"
        "    for name, req in (('FIOSETOWN', 0x8901), ('SIOCSPGRP', 0x8902)):\n"
        "        attempt(out, name, libc.ioctl, r, req, ctypes.byref(pid))\n"
        "    on = ctypes.c_int(1)\n"
        "    attempt(out, 'FIOASYNC', libc.ioctl, r, 0x5452, ctypes.byref(on))\n"
        "    os.write(w, b'x')\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "fcntl F_SETLEASE and F_NOTIFY",
        _TRY + "import fcntl, json\ndef main(ctx):\n"
        "    out = []\n"
        "    for path in (ctx['outside'], json.__file__):  # a host file, a library file\n"
        "        fd = attempt(out, 'open ' + path, os.open, path, os.O_RDONLY)\n"
        "        if fd is not None:\n"
        "            attempt(out, 'F_SETLEASE', fcntl.fcntl, fd, 1024, fcntl.F_RDLCK)\n"
        "    d = attempt(out, 'open folder', os.open, os.path.dirname(json.__file__), os.O_RDONLY)\n"
        "    if d is not None:\n"
        "        attempt(out, 'F_NOTIFY', fcntl.fcntl, d, 1026, 0x80000000 | 0x2)\n"
        "    return [x for x in out if not x.startswith('ok open')]\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "lock a file the service shares (flock, lockf, OFD locks)",
        _TRY + "import fcntl, struct, json\ndef main(ctx):\n"
        "    out = []\n"
        "    for path in (ctx['outside'], json.__file__):  # a host file, a library file\n"
        "        fd = attempt(out, 'open ' + path, os.open, path, os.O_RDONLY)\n"
        "        if fd is None:\n"
        "            continue\n"
        "        attempt(out, 'flock', fcntl.flock, fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "        attempt(out, 'lockf', fcntl.lockf, fd, fcntl.LOCK_SH | fcntl.LOCK_NB)\n"
        "        lock = struct.pack('hhqqi4x', fcntl.F_RDLCK, 0, 0, 0, 0)\n"
        "        attempt(out, 'F_OFD_SETLK', fcntl.fcntl, fd, 37, lock)\n"
        "    return [x for x in out if not x.startswith('ok open')]\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "inotify and fanotify watches on host folders",
        _TRY + "def main(ctx):\n"
        "    out = []\n"
        "    fd = attempt(out, 'inotify_init1', libc.inotify_init1, 0)\n"
        "    if fd is not None:\n"
        "        attempt(out, 'inotify_add_watch', libc.inotify_add_watch, fd, b'/tmp', 0xFFF)\n"
        "    attempt(out, 'fanotify_init', libc.fanotify_init, 0, 0)\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "memfd_create, userfaultfd, io_uring_setup",
        _TRY + "def main(ctx):\n"
        "    out = []\n"
        "    attempt(out, 'memfd_create', os.memfd_create, 'x')\n"
        "    nr = {'x86_64': 323, 'aarch64': 282}.get(ARCH)\n"
        "    if nr:\n"
        "        attempt(out, 'userfaultfd', libc.syscall, nr, 0)\n"
        "    params = ctypes.create_string_buffer(120)\n"
        "    attempt(out, 'io_uring_setup', libc.syscall, 425, 4, params)\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "keyrings (add_key, keyctl)",
        _TRY + "def main(ctx):\n"
        "    out = []\n"
        "    nrs = {'x86_64': (248, 250), 'aarch64': (217, 219)}.get(ARCH)\n"
        "    if nrs:\n"
        "        attempt(out, 'add_key', libc.syscall, nrs[0], b'user', b'formalist', b'x', 1, -4)\n"
        "        attempt(out, 'keyctl', libc.syscall, nrs[1], 0, -4, 0)  # GET_KEYRING_ID\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "pidfd_open and pidfd_send_signal to the service",
        _TRY + "import signal\ndef main(ctx):\n"
        "    out = []\n"
        "    fd = attempt(out, 'pidfd_open', os.pidfd_open, ctx['parent'])\n"
        "    attempt(out, 'pidfd_send_signal', libc.syscall, 424, fd if fd is not None else -1,\n"
        "            signal.SIGUSR1, None, 0)\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "process_vm_readv of the service's memory",
        _TRY + "class IOVec(ctypes.Structure):\n"
        "    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n"
        "def main(ctx):\n"
        "    out = []\n"
        "    buf = ctypes.create_string_buffer(4096)\n"
        "    local = IOVec(ctypes.cast(buf, ctypes.c_void_p), 4096)\n"
        "    remote = IOVec(0x400000, 4096)\n"
        "    attempt(out, 'process_vm_readv', libc.process_vm_readv, ctx['parent'],\n"
        "            ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "leave the process group (setsid, setpgid) to outlive the kill",
        _TRY + "def main(ctx):\n"
        "    out = []\n"
        "    attempt(out, 'setpgid', os.setpgid, 0, 0)\n"
        "    attempt(out, 'setsid', os.setsid)\n"
        "    return out\n",
        lambda r: r.ok and any(str(x).startswith("ok setsid") for x in r.value),
        nons=True,
        family="kernel",
    ),
    Attack(
        "renice the service or other sandbox calls (setpriority)",
        _TRY + "def main(ctx):\n"
        "    out = []\n"
        "    attempt(out, 'setpriority user', os.setpriority, os.PRIO_USER, os.getuid(), 19)\n"
        "    attempt(out, 'setpriority parent', os.setpriority, os.PRIO_PROCESS, ctx['parent'], 19)\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
    Attack(
        "shared files in /tmp and /dev/shm (shm_open) for the next call",
        "import os\ndef main(ctx):\n"
        "    out = []\n"
        "    for path in ('/tmp/formalist-left', '/dev/shm/formalist-left', '/var/tmp/formalist-left'):\n"
        "        try:\n"
        "            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o666)\n"
        "            os.write(fd, b'left')\n"
        "            out.append('ok ' + path)\n"
        "        except OSError as e:\n"
        "            out.append('denied %s' % e)\n"
        "    return out\n",
        _listed_ok,
        nons=True,
        family="kernel",
    ),
]


def _modes(a: Attack) -> tuple[str, ...]:
    if a.slow:
        return ("raw",)
    return ("guarded", "nostatic", "raw") + (("nons",) if a.nons else ())


def _params() -> list[Any]:
    return [pytest.param(a, m, id=f"{m}: {a.id}") for a in ATTACKS for m in _modes(a)]


MODES = ("guarded", "nostatic", "raw", "nons")
MODE_NAMES = {
    "guarded": "full sandbox",
    "nostatic": "static check off (guards and kernel layers on)",
    "raw": "static check and Python guards off (kernel layers alone)",
    "nons": "raw, and without namespaces (explicit opt-in)",
}


@dataclass
class Tally:
    runs: int = 0
    escapes: list[str] = field(default_factory=list)
    reached: list[str] = field(default_factory=list)  # interpreter reached (expected in raw only)
    forged: list[str] = field(default_factory=list)
    refused: int = 0  # by the static check
    skipped: int = 0


TALLY: dict[str, Tally] = {m: Tally() for m in MODES}


def summary() -> list[str]:
    """Attacks / escapes / forged replies per mode, from the runs so far in this session."""
    lines = [f"sandbox attack suite: {len(ATTACKS)} attacks"]
    for m in MODES:
        t = TALLY[m]
        if not t.runs and not t.skipped:
            continue
        lines.append(
            f"  {m:9s} {MODE_NAMES[m]}: {t.runs} run, {len(t.escapes)} escapes, "
            f"{len(t.forged)} forged replies believed, {len(t.reached)} reached the interpreter, "
            f"{t.refused} refused by the static check, {t.skipped} skipped"
        )
        lines += [f"      escape: {x}" for x in t.escapes]
        lines += [f"      forged: {x}" for x in t.forged]
        lines += [f"      reached: {x}" for x in t.reached]
    return lines


@pytest.fixture(scope="module", autouse=True)
def _print_summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.getplugin("terminalreporter"), plugins.getplugin("capturemanager")
    if reporter is not None and capture is not None and any(t.runs for t in TALLY.values()):
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for line in summary():
                reporter.write_line(line)


def test_there_are_at_least_seventy_attacks() -> None:
    assert len(ATTACKS) >= 70
    assert len({a.id for a in ATTACKS}) == len(ATTACKS)


def _forgery(sb: Sandbox, r: SandboxResult) -> str:
    """What the host believed that it should not have ('' when nothing)."""
    expected = ("static",) if r.status is S.REFUSED else sb.layers_in_force()
    if r.layers != expected:
        return f"layers {r.layers}, the host set {expected}"
    if r.ok and check_result_value(r.value) is not None:
        return f"accepted a value that {check_result_value(r.value)}"
    if len(r.error_type) > 100 or len(r.message) > 2100 or isinstance(r.line, bool):
        return "an unbounded error field"
    try:  # what the CLI prints with --json: strict, encodable JSON
        json.dumps(r.to_json(), allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError) as e:
        return f"the result cannot be printed as JSON: {e}"
    return ""


@pytest.mark.parametrize(("attack", "mode"), _params())
def test_attack_fails(
    attack: Attack, mode: str, world: World, request: pytest.FixtureRequest
) -> None:
    tally = TALLY[mode]
    try:
        sb: Sandbox = request.getfixturevalue(mode)
    except pytest.skip.Exception:
        tally.skipped += 1
        raise
    if attack.needs == "files":
        m = sb.machine.layers
        if not (m["namespaces"].available or m["landlock"].available):
            tally.skipped += 1
            pytest.skip(
                "reads of world-readable files are confined only by bubblewrap's mount namespace "
                "or Landlock, and this kernel offers neither"
            )
    tally.runs += 1
    try:
        r = sb.run(attack.code, "main", [world.ctx()])
    except SandboxUnavailable as e:
        tally.forged.append(f"{attack.id}: the host blamed the machine: {e}")
        raise AssertionError(f"a tool's reply made the host blame the machine: {e}") from e
    forged = _forgery(sb, r)
    if forged:
        tally.forged.append(f"{attack.id}: {forged}")
    won = (
        attack.won(r) or world.marker.exists() or world.accepted_connection() or bool(world.signals)
    )
    if won:
        tally.escapes.append(f"{attack.id}: {r.describe()[:200]}")
    reached = attack.reach(r)
    if reached:
        tally.reached.append(f"{attack.id}: {r.describe()[:120]}")
    if r.status is S.REFUSED:
        tally.refused += 1
    assert not forged, forged
    assert not attack.won(r), f"the attack won: {r.describe()}"
    assert not world.marker.exists(), "the attack wrote the marker file"
    assert not world.accepted_connection(), "the attack reached the service's port"
    if mode == "guarded" or (mode == "nostatic" and attack.guards_stop):
        assert not reached, f"the attack reached the interpreter: {r.describe()}"
    if mode == "guarded" and attack.static:
        assert r.status is S.REFUSED, r.describe()
    elif mode in ("raw", "nons") and attack.raw_status is not None:
        allowed = attack.raw_status | ({S.TIMEOUT} if attack.slow else set())
        assert r.status in allowed, r.describe()  # (a loaded machine may hit the wall first)
    if mode in ("raw", "nons"):
        assert "seccomp" in r.layers and "rlimits" in r.layers


def test_persistent_state_does_not_reach_the_next_call(
    nons: Sandbox, raw: Sandbox, world: World
) -> None:
    """One call tries to leave state behind in every way a process shares with the next (files,
    System V and POSIX IPC, xattrs); the next call looks for it. Without namespaces too."""
    leave = _TRY + (
        "def main(ctx):\n"
        "    out = []\n"
        "    for path in ('/tmp/formalist-left', '/dev/shm/formalist-left', 'left', ctx['folder'] + '/left'):\n"
        "        attempt(out, 'file ' + path, os.open, path, os.O_CREAT | os.O_WRONLY, 0o666)\n"
        "    attempt(out, 'shmget', libc.shmget, 0x464D4C, 4096, 0o1666)\n"
        "    attempt(out, 'msgget', libc.msgget, 0x464D4C, 0o1666)\n"
        "    attempt(out, 'semget', libc.semget, 0x464D4C, 1, 0o1666)\n"
        "    attempt(out, 'mq_open', libc.mq_open, b'/formalist-left', os.O_CREAT | os.O_RDWR, 0o666, None)\n"
        "    attempt(out, 'setxattr', os.setxattr, ctx['writable'], 'user.left', b'1')\n"
        "    return out\n"
    )
    find = _TRY + (
        "def main(ctx):\n"
        "    out = []\n"
        "    for path in ('/tmp/formalist-left', '/dev/shm/formalist-left', 'left', ctx['folder'] + '/left'):\n"
        "        attempt(out, 'file ' + path, os.open, path, os.O_RDONLY)\n"
        "    attempt(out, 'shmget', libc.shmget, 0x464D4C, 0, 0)\n"
        "    attempt(out, 'msgget', libc.msgget, 0x464D4C, 0)\n"
        "    attempt(out, 'semget', libc.semget, 0x464D4C, 0, 0)\n"
        "    attempt(out, 'mq_open', libc.mq_open, b'/formalist-left', os.O_RDONLY, 0, None)\n"
        "    attempt(out, 'getxattr', os.getxattr, ctx['writable'], 'user.left')\n"
        "    return out\n"
    )
    for sb in (nons, raw):
        first = sb.run(leave, "main", [world.ctx()])
        second = sb.run(find, "main", [world.ctx()])
        assert first.ok and second.ok, (first.describe(), second.describe())
        assert not [x for x in first.value if x.startswith("ok")], first.value
        assert not [x for x in second.value if x.startswith("ok")], second.value


def test_zz_summary() -> None:
    """The summary of the runs above (printed at the end of the module too); no escapes and no
    forged reply believed in any mode."""
    lines = summary()
    print("\n".join(lines))
    for m in MODES:
        assert TALLY[m].escapes == [] and TALLY[m].forged == [], "\n".join(lines)
    for m in ("guarded",):
        assert TALLY[m].reached == [], "\n".join(lines)


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
