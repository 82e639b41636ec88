"""The sandbox's layers: which this machine has, which a policy requires, and what was set.

Layers, outermost first:

``static``        the syntax-tree check of ``static_check`` (readable errors, not a boundary)
``process``       a fresh child per call: ``python -I -S -B``, empty environment, a temporary
                  working directory it cannot write, its own session and process group, a wall-clock
                  limit that kills the whole group
``rlimits``       CPU time, address space, file size, open files, processes, no core files
``unprivileged``  the child runs as an unprivileged uid (``nobody`` when the service is root)
``seccomp``       the syscall filter of ``seccomp_filter`` (network, process creation, file writes,
                  System V and POSIX IPC, xattrs, signals to others by any route, file locks)
``landlock``      the kernel's file-system confinement: the child may read only the interpreter's
                  standard library, shared libraries and its working directory
``namespaces``    bubblewrap: new user, PID, network, IPC, UTS and cgroup namespaces and a mount
                  namespace that holds only ``/usr`` (read-only) and the working directory

A required layer that this machine lacks makes the sandbox refuse to run (``SandboxUnavailable``);
``allow_missing`` in ``SandboxPolicy`` is the explicit way to run without it (or to ``skip`` it).
``namespaces`` is required by default (see ``DEFAULT_REQUIRED``).
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import StopError
from tool_maker.seccomp_filter import compiled_filter

ALL_LAYERS = ("static", "process", "rlimits", "unprivileged", "seccomp", "landlock", "namespaces")
DEFAULT_REQUIRED = frozenset({"process", "rlimits", "unprivileged", "seccomp", "namespaces"})
"""Without these the sandbox refuses to run. ``namespaces`` is required: without its PID, IPC and
mount namespaces a tool shares the host's ``/tmp``, ``/dev/shm``, process table and IPC objects
with the service and with the next call, and only the seccomp filter stands between them. Running
without it is an explicit opt-in (``FORMALIST_SANDBOX_ALLOW_MISSING=namespaces``, or
``allow_missing`` in ``SandboxPolicy``). ``landlock`` is used where the machine has it; require it
too with ``SandboxPolicy(require=...)``."""

HOW_TO_GET = {
    "seccomp": "install libseccomp2 (Debian) and `pip install pyseccomp` (both are in `make setup`)",
    "namespaces": "install bubblewrap (`apt-get install bubblewrap`, in `make setup`) on a kernel that allows user namespaces",
    "landlock": "use a Linux kernel of 5.13 or later with Landlock enabled",
    "unprivileged": "run the service as root (it then drops to `nobody`) or as an unprivileged user",
    "rlimits": "run on Linux",
    "process": "run on Linux",
}


class SandboxUnavailable(StopError):
    """A layer the policy requires is missing on this machine: the sandbox will not run code."""


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer on this machine: whether it can be used, and the detail (or why not)."""

    name: str
    available: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Interpreter:
    """The Python the child runs: its path and the directories it reads its standard library
    from (``read_paths``), which the namespaces and Landlock layers must let it read."""

    path: str
    read_paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MachineLayers:
    """What this machine offers, probed once per (uid, interpreter)."""

    uid: int | None
    gid: int | None
    interpreter: Interpreter | None
    layers: dict[str, Layer] = field(default_factory=dict)
    bwrap_args: tuple[str, ...] = ()

    def missing(self, required: frozenset[str]) -> list[Layer]:
        return [
            self.layers[n] for n in ALL_LAYERS if n in required and not self.layers[n].available
        ]

    def describe(self) -> list[str]:
        return [
            f"{layer.name:12s} {'yes' if layer.available else 'no '}  {layer.detail}"
            for layer in (self.layers[n] for n in ALL_LAYERS)
        ]


def _sandbox_user(uid: int | None) -> tuple[int | None, int | None, str]:
    """The uid and gid to run as; ``None`` keeps the service's own (when it is not root)."""
    if os.geteuid() != 0:
        return (
            None,
            None,
            f"runs as the service's own unprivileged uid {os.geteuid()} "
            "(Landlock or namespaces must then keep it from the service's files)",
        )
    if uid is None:
        try:
            entry = pwd.getpwnam("nobody")
        except KeyError:
            return None, None, "the service is root and there is no `nobody` user to drop to"
        uid, gid = entry.pw_uid, entry.pw_gid
    else:
        gid = uid
    if uid == 0:
        return None, None, "uid 0 is not unprivileged"
    return uid, gid, f"drops from root to uid {uid}, gid {gid}, no supplementary groups"


_PROBE = "import sys, json, ctypes, resource; print(json.dumps([sys.prefix, sys.path]))"


def _run_as(
    cmd: list[str], uid: int | None, gid: int | None, timeout: float = 10.0
) -> tuple[int, str, str]:
    kw: dict[str, object] = {}
    if uid is not None:
        kw.update(user=uid, group=gid, extra_groups=[])
    try:
        r = subprocess.run(
            cmd,
            env={},
            cwd="/",
            capture_output=True,
            text=True,
            timeout=timeout,
            **kw,  # type: ignore[call-overload]
        )
    except (OSError, subprocess.SubprocessError) as e:
        return -1, "", f"{type(e).__name__}: {e}"
    return int(r.returncode), r.stdout, r.stderr


def _interpreter(
    candidates: list[str], uid: int | None, gid: int | None
) -> tuple[Interpreter | None, str]:
    """The first candidate that the sandbox uid can run with its own standard library.

    A Python installed under a directory the uid cannot enter (pyenv under ``/root``) may still
    start but then reads another installation's library; comparing ``sys.prefix`` with what the
    service sees catches that.
    """
    import json

    reasons = []
    for path in dict.fromkeys(c for c in candidates if c):
        rc, out, err = _run_as([path, "-I", "-S", "-B", "-c", _PROBE], None, None)
        if rc != 0:
            reasons.append(f"{path}: does not run ({err.strip()[:200]})")
            continue
        own_prefix = json.loads(out)[0]
        rc, out, err = _run_as([path, "-I", "-S", "-B", "-c", _PROBE], uid, gid)
        if rc != 0:
            reasons.append(f"{path}: the sandbox uid cannot run it ({err.strip()[:200]})")
            continue
        prefix, paths = json.loads(out)
        if prefix != own_prefix:
            reasons.append(f"{path}: the sandbox uid cannot read its library under {own_prefix}")
            continue
        read = tuple(p for p in paths if p and os.path.exists(p))
        return Interpreter(path, read), ""
    return None, "; ".join(reasons) or "no Python interpreter found"


BWRAP_NAMESPACES = (
    "--unshare-user",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--disable-userns",
    "--die-with-parent",
)


def _bwrap_args(bwrap: str, interp: Interpreter) -> tuple[str, ...]:
    """bubblewrap's arguments up to (not including) the working directory and the command."""
    args = [bwrap, *BWRAP_NAMESPACES, "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    mounted = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
    for p in (str(Path(interp.path).resolve().parent), *interp.read_paths):
        if not any(p == m or p.startswith(m + "/") for m in mounted):
            args += ["--ro-bind", p, p]
            mounted.append(p)
    args += ["--dev", "/dev", "--clearenv"]
    return tuple(args)


def _bwrap(interp: Interpreter, uid: int | None, gid: int | None) -> tuple[tuple[str, ...], str]:
    exe = shutil.which("bwrap")
    if exe is None:
        return (), "bubblewrap (bwrap) is not installed"
    base = _bwrap_args(exe, interp)
    rc, out, err = _run_as(
        [*base, "--chdir", "/", interp.path, "-I", "-S", "-B", "-c", "print('ok')"], uid, gid
    )
    if rc != 0 or out.strip() != "ok":
        return (), f"bubblewrap cannot start a sandbox here: {err.strip()[:300] or f'exit {rc}'}"
    return base, f"bubblewrap {exe}: user, pid, net, ipc, uts, cgroup and mount namespaces"


_LANDLOCK_PROBE = (
    "import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
    "print(libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1)))"
)


def _landlock(interp: Interpreter) -> tuple[bool, str]:
    rc, out, err = _run_as([interp.path, "-I", "-S", "-B", "-c", _LANDLOCK_PROBE], None, None)
    try:
        abi = int(out.strip())
    except ValueError:
        return False, f"cannot ask the kernel about Landlock: {err.strip()[:200]}"
    if abi < 1:
        return False, "the kernel has no Landlock (or it is disabled)"
    return (
        True,
        f"Landlock ABI {abi}: reads confined to the standard library, shared libraries and the working directory",
    )


@functools.cache
def probe(uid: int | None = None, interpreter: str = "") -> MachineLayers:
    """Find out, once per process, which layers this machine can set (a few child processes)."""
    layers: dict[str, Layer] = {}
    linux = sys.platform.startswith("linux")
    layers["static"] = Layer("static", True, "syntax-tree check before running")
    sb_uid, sb_gid, user_detail = _sandbox_user(uid)
    unprivileged = sb_uid is not None or os.geteuid() != 0
    layers["unprivileged"] = Layer("unprivileged", unprivileged, user_detail)
    candidates = [
        interpreter,
        os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable),
        os.path.realpath(sys.executable),
        "/usr/bin/python3",
        "/usr/local/bin/python3",
    ]
    interp, why = _interpreter(candidates if not interpreter else [interpreter], sb_uid, sb_gid)
    layers["process"] = Layer(
        "process",
        linux and interp is not None,
        f"fresh `{interp.path} -I -S -B` per call, empty environment, own process group"
        if interp
        else why,
    )
    layers["rlimits"] = Layer(
        "rlimits", linux, "CPU, address space, file size, open files, processes, no core"
    )
    sf = compiled_filter()
    layers["seccomp"] = Layer(
        "seccomp",
        linux and sf.available,
        f"pyseccomp filter of {len(sf.bpf) // 8} instructions" if sf.available else sf.reason,
    )
    bwrap_args: tuple[str, ...] = ()
    if interp is None:
        layers["landlock"] = Layer("landlock", False, "no interpreter to run")
        layers["namespaces"] = Layer("namespaces", False, "no interpreter to run")
    else:
        ok, detail = _landlock(interp)
        layers["landlock"] = Layer("landlock", linux and ok, detail)
        bwrap_args, detail = _bwrap(interp, sb_uid, sb_gid)
        layers["namespaces"] = Layer("namespaces", bool(bwrap_args), detail)
    return MachineLayers(sb_uid, sb_gid, interp, layers, bwrap_args)
