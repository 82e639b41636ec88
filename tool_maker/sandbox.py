"""The sandbox: run untrusted Python (a tool the language model wrote) and get JSON back.

``Sandbox.run(code, entry, args)`` checks the code statically, then starts a fresh child process
(``sandbox_child``) under every layer this machine has (see ``layers``), sends it the code and the
arguments as JSON on standard input, and reads one JSON reply. Arguments and results cross as JSON
only, with size caps; printed output is kept up to a cap and a tool that prints more is stopped.
The wall-clock limit kills the child's whole process group, and the group is killed and the child
reaped after every call, however it ended.

Outcomes are values (``SandboxResult.status``): the tool raising, running out of CPU or memory, or
returning something that is not JSON are all results. Only our side failing (a required layer
missing, the child not starting) raises ``SandboxUnavailable`` / ``SandboxFault``.

What the host believes: the child's *setup line* (written before the tool's code is loaded, so
the tool cannot have written it) says whether the child set every layer it was asked for; the
layers a result lists are the host's own knowledge (``layers_in_force``). Everything after the
setup line could have been written by the tool (it can patch ``json``, reach the reply
descriptor, rewrite objects found through ``gc``), so it is read as the tool's data: strict JSON
(``strict_json_loads``), one of the known shapes, bounded, and a value any JSON reader can hold
(``check_result_value``). A reply that claims a layer failed is just a malformed reply.
"""

from __future__ import annotations

import enum
import json
import math
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from agent.errors import Diagnostic, StopError
from tool_maker.layers import (
    ALL_LAYERS,
    DEFAULT_REQUIRED,
    HOW_TO_GET,
    Layer,
    MachineLayers,
    SandboxUnavailable,
    probe,
)
from tool_maker.seccomp_filter import compiled_filter
from tool_maker.static_check import (
    ALLOWED_IMPORTS,
    BANNED_ATTRIBUTES,
    BANNED_NAMES,
    check_source,
)


class SandboxFault(StopError):
    """The sandbox itself failed (the child could not be started): not the tool's fault."""


class SandboxStatus(enum.Enum):
    OK = "OK"
    REFUSED = "REFUSED"  # the static check refused the code; nothing ran
    ERROR = "ERROR"  # the tool raised an exception
    TIMEOUT = "TIMEOUT"  # the wall-clock limit
    CPU_LIMIT = "CPU_LIMIT"
    MEMORY_LIMIT = "MEMORY_LIMIT"
    OUTPUT_LIMIT = "OUTPUT_LIMIT"  # printed more than the cap
    BAD_RESULT = "BAD_RESULT"  # not JSON, or over the size cap
    CRASHED = "CRASHED"  # died without a reply (a signal, a seccomp kill, a broken interpreter)


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Limits of one call. Times in seconds, sizes in bytes unless the name says otherwise."""

    wall_s: float = 5.0
    cpu_s: int = 2
    memory_mb: int = 256
    file_size_bytes: int = 1 << 20
    open_files: int = 32
    processes: int = 1
    result_bytes: int = 1 << 20
    output_bytes: int = 64 << 10
    input_bytes: int = 4 << 20

    def __post_init__(self) -> None:
        if not 0 < self.wall_s <= 3600 or not 1 <= self.cpu_s <= 3600:
            raise ValueError("wall_s must be in (0, 3600] and cpu_s in [1, 3600]")
        if self.memory_mb < 32:
            raise ValueError("memory_mb below 32 cannot start Python")

    def for_child(self) -> dict[str, int]:
        return {
            "cpu_s": self.cpu_s,
            "memory_bytes": self.memory_mb << 20,
            "file_size_bytes": self.file_size_bytes,
            "open_files": self.open_files,
            "processes": self.processes,
            "result_bytes": self.result_bytes,
        }


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """Which layers to use and which must be there.

    ``require``: layers without which nothing runs (default: process, rlimits, unprivileged,
    seccomp, namespaces). ``allow_missing``: required layers the caller explicitly accepts to run
    without. ``skip``: layers not to use even where available; a required one only if it is also
    in ``allow_missing``.
    ``static_check`` and ``python_guards`` (the restricted builtins and import hook in the child)
    are readable-error layers; the attack tests turn them off to show the process layers hold alone.
    """

    limits: SandboxLimits = field(default_factory=SandboxLimits)
    require: frozenset[str] = DEFAULT_REQUIRED
    allow_missing: frozenset[str] = frozenset()
    skip: frozenset[str] = frozenset()
    uid: int | None = None
    interpreter: str = ""
    static_check: bool = True
    python_guards: bool = True

    def __post_init__(self) -> None:
        unknown = (self.require | self.allow_missing | self.skip) - set(ALL_LAYERS)
        if unknown:
            raise ValueError(
                f"unknown sandbox layer(s): {', '.join(sorted(unknown))}; known: {', '.join(ALL_LAYERS)}"
            )
        if self.skip & self.require - self.allow_missing:
            both = ", ".join(sorted(self.skip & self.require - self.allow_missing))
            raise ValueError(
                f"cannot both require and skip {both} (to skip a required layer, allow it missing)"
            )

    @classmethod
    def from_env(cls, **kw: Any) -> SandboxPolicy:
        """A policy with ``FORMALIST_SANDBOX_ALLOW_MISSING`` and ``FORMALIST_SANDBOX_REQUIRE``
        (comma-separated layer names) applied."""

        def names(var: str) -> frozenset[str]:
            return frozenset(x.strip() for x in os.environ.get(var, "").split(",") if x.strip())

        require = DEFAULT_REQUIRED | names("FORMALIST_SANDBOX_REQUIRE")
        return cls(require=require, allow_missing=names("FORMALIST_SANDBOX_ALLOW_MISSING"), **kw)


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """What one call came to.

    ``value``: the entry point's return value (decoded JSON) when ``status`` is OK. ``error_type``,
    ``message`` and ``line`` (in the tool's source) say what went wrong otherwise. ``output``: what
    the tool printed (up to the cap). ``layers``: the layers in force for this call, as the host knows
    them (``Sandbox.layers_in_force``; never as the tool's side of the child reports them). ``wall_s``: seconds from start to reaped child.
    """

    status: SandboxStatus
    value: Any = None
    error_type: str = ""
    message: str = ""
    line: int | None = None
    output: str = ""
    layers: tuple[str, ...] = ()
    wall_s: float = 0.0
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is SandboxStatus.OK

    def describe(self) -> str:
        """One line for a person or a language model: what happened and where."""
        if self.ok:
            return f"returned {json.dumps(self.value)[:500]}"
        where = f" at line {self.line}" if self.line else ""
        if self.status is SandboxStatus.ERROR:
            return f"raised {self.error_type}{where}: {self.message}"
        if self.status is SandboxStatus.REFUSED:
            return "refused by the static check:\n" + "\n".join(
                f"- {d.render()}" for d in self.diagnostics
            )
        return f"{self.status.value}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "value": self.value,
            "error_type": self.error_type,
            "message": self.message,
            "line": self.line,
            "output": self.output,
            "layers": list(self.layers),
            "wall_s": round(self.wall_s, 4),
        }


CHILD = Path(__file__).with_name("sandbox_child.py")


@cache
def _child_source() -> str:
    return CHILD.read_text(encoding="utf-8")


_SIGNALS = {
    signal.SIGSEGV: "a segmentation fault",
    signal.SIGSYS: "the seccomp filter",
    signal.SIGABRT: "an abort",
}


class Sandbox:
    """Runs code in child processes under ``policy``. Safe to share between threads."""

    def __init__(self, policy: SandboxPolicy | None = None) -> None:
        self.policy = policy or SandboxPolicy.from_env()
        self._machine: MachineLayers | None = None

    @property
    def machine(self) -> MachineLayers:
        if self._machine is None:
            self._machine = probe(self.policy.uid, self.policy.interpreter)
        return self._machine

    def active_layers(self) -> list[str]:
        """The layers a call will use here (before the child confirms them)."""
        m = self.machine
        names = [n for n in ALL_LAYERS if m.layers[n].available and n not in self.policy.skip]
        if not self.policy.static_check:
            names.remove("static")
        return names

    def check_ready(self) -> None:
        """Raise ``SandboxUnavailable`` naming each required layer this machine lacks."""
        missing = [
            layer
            for layer in self.machine.missing(self.policy.require)
            if layer.name not in self.policy.allow_missing
        ]
        if (
            self.machine.uid is None
            and "unprivileged" in self.policy.require
            and "unprivileged" not in self.policy.allow_missing
            and not (self._use("landlock") or self._use("namespaces"))
        ):
            # A child with the service's own uid could read the service's files and /proc
            # entries; only Landlock or a mount namespace keeps it from them.
            missing.append(
                Layer(
                    "unprivileged",
                    False,
                    f"the child would run as the service's own uid {os.geteuid()} with neither "
                    "Landlock nor namespaces to keep it from the service's files",
                )
            )
        if missing:
            lines = [f"- {m.name}: {m.detail}; to get it: {HOW_TO_GET[m.name]}" for m in missing]
            names = ",".join(m.name for m in missing)
            raise SandboxUnavailable(
                "the sandbox will not run code without these required layers:\n"
                + "\n".join(lines)
                + f"\n(to run without them anyway: FORMALIST_SANDBOX_ALLOW_MISSING={names})"
            )
        if self.machine.interpreter is None:
            raise SandboxUnavailable(
                f"no Python interpreter for the sandbox: {self.machine.layers['process'].detail}"
            )

    def run(
        self,
        code: str,
        entry: str = "main",
        args: list[Any] | tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        limits: SandboxLimits | None = None,
    ) -> SandboxResult:
        """Run ``code`` and call ``entry(*args, **kwargs)`` in a fresh child; see the module doc."""
        t0 = time.perf_counter()
        lim = limits or self.policy.limits
        if self.policy.static_check:
            found = check_source(code)
            if found:
                return SandboxResult(
                    SandboxStatus.REFUSED,
                    message=found[0].render(),
                    line=_line_of(found[0]),
                    diagnostics=tuple(found),
                    layers=("static",),
                    wall_s=time.perf_counter() - t0,
                )
        self.check_ready()
        try:
            request = json.dumps(
                {
                    "code": code,
                    "entry": entry,
                    "args": list(args),
                    "kwargs": kwargs or {},
                    "limits": lim.for_child(),
                    "guards": self.policy.python_guards,
                    "banned": sorted(BANNED_NAMES),
                    "banned_attributes": sorted(BANNED_ATTRIBUTES),
                    "allowed_imports": sorted(ALLOWED_IMPORTS),
                    "seccomp": self._seccomp_hex(),
                    "landlock": self._landlock_paths(),
                },
                allow_nan=False,
            ).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise SandboxFault(f"the arguments are not JSON: {e}") from e
        if len(request) > lim.input_bytes:
            raise SandboxFault(
                f"the code and arguments are {len(request):,} bytes of JSON; the limit is {lim.input_bytes:,}"
            )
        result = self._spawn(request, lim)
        return replace(result, wall_s=time.perf_counter() - t0)

    def layers_in_force(self) -> tuple[str, ...]:
        """The layers a call runs under, from the host's own knowledge: what it set itself
        (process, uid, namespaces) and what it asked the child to set, which the child confirms
        before any tool code runs (or the call stops with ``SandboxUnavailable``)."""
        names = ["static"] if self.policy.static_check else []
        names.append("process")
        if self.machine.uid is not None or os.geteuid() != 0:
            names.append("unprivileged")
        if self._use("namespaces"):
            names.append("namespaces")
        names += self._requested_child_layers()
        return tuple(names)

    # -- internals ---------------------------------------------------------------------------

    def _use(self, layer: str) -> bool:
        return self.machine.layers[layer].available and layer not in self.policy.skip

    def _requested_child_layers(self) -> tuple[str, ...]:
        names = ["rlimits"]
        if self._use("landlock"):
            names.append("landlock")
        if self._use("seccomp"):
            names.append("seccomp")
        return tuple(names)

    def _seccomp_hex(self) -> str:
        return compiled_filter().bpf.hex() if self._use("seccomp") else ""

    def _landlock_paths(self) -> list[str]:
        if not self._use("landlock"):
            return []
        # The child adds its own sys.path and working directory; these are the shared libraries
        # that lazily imported extension modules (_decimal, _json...) load.
        return ["/usr/lib", "/lib", "/lib64", "/usr/lib64", "/etc/ld.so.cache"]

    def _command(self, workdir: str) -> list[str]:
        m = self.machine
        assert m.interpreter is not None
        py = [m.interpreter.path, "-I", "-S", "-B", "-c", _child_source()]
        if self._use("namespaces"):
            return [*m.bwrap_args, "--ro-bind", workdir, "/sandbox", "--chdir", "/sandbox", *py]
        return py

    def _spawn(self, request: bytes, lim: SandboxLimits) -> SandboxResult:
        m = self.machine
        workdir = tempfile.mkdtemp(prefix="formalist-sandbox-")
        os.chmod(workdir, 0o755)  # the child may read it, not write it
        kw: dict[str, Any] = {}
        if m.uid is not None:
            kw.update(user=m.uid, group=m.gid, extra_groups=[])
        try:
            try:
                proc = subprocess.Popen(
                    self._command(workdir),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env={},
                    cwd=workdir,
                    start_new_session=True,
                    close_fds=True,
                    umask=0o077,
                    **kw,
                )
            except OSError as e:
                raise SandboxFault(f"the sandbox child could not start: {e}") from e
            try:
                return self._talk(proc, request, lim)
            finally:
                if proc.returncode is None:
                    _kill_group(proc)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _talk(
        self, proc: subprocess.Popen[bytes], request: bytes, lim: SandboxLimits
    ) -> SandboxResult:
        """Feed the request, read the reply and the output under the caps and the deadline."""
        assert proc.stdin and proc.stdout and proc.stderr
        deadline = time.monotonic() + lim.wall_s
        reply_cap = lim.result_bytes + 64 * 1024  # the reply wraps the value with a little JSON
        reply, output = bytearray(), bytearray()
        stopped: tuple[SandboxStatus, str] | None = None
        try:
            pidfd: int | None = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # Linux before 5.3: poll for the exit instead
            pidfd = None
        sel = selectors.DefaultSelector()
        try:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin, selectors.EVENT_WRITE, "in")
            sel.register(proc.stdout, selectors.EVENT_READ, "reply")
            sel.register(proc.stderr, selectors.EVENT_READ, "output")
            if pidfd is not None:
                sel.register(pidfd, selectors.EVENT_READ, "exit")
            pending = memoryview(request)
            exited = False
            open_pipes = 2
            # Until the child has exited and closed both pipes (a child that closes its pipes
            # and goes on running is waited for, up to the deadline, like any other).
            while (open_pipes or not exited) and stopped is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    stopped = (
                        SandboxStatus.TIMEOUT,
                        f"stopped after the wall-clock limit of {lim.wall_s:g} s",
                    )
                    break
                if pidfd is None and not exited:
                    exited = _exited(proc.pid)
                    left = min(left, 0.02)
                if exited:  # the child is gone: whatever is left in the pipes is there already
                    left = min(left, 0.5)
                events = sel.select(left)
                if not events and exited:
                    break  # a grandchild holds a pipe open; the group kill below ends it
                for key, _ in events:
                    what = key.data
                    if what == "in":
                        try:
                            n = os.write(proc.stdin.fileno(), pending[: 1 << 16])
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:
                            n = len(pending)
                        pending = pending[n:]
                        if not pending:
                            sel.unregister(proc.stdin)
                            proc.stdin.close()
                    elif what == "exit":
                        exited = True
                        sel.unregister(key.fileobj)
                    else:
                        chunk = os.read(key.fd, 1 << 16)
                        if not chunk:
                            sel.unregister(key.fileobj)
                            open_pipes -= 1
                            continue
                        buf = reply if what == "reply" else output
                        buf += chunk
                        if what == "output" and len(output) > lim.output_bytes:
                            stopped = (
                                SandboxStatus.OUTPUT_LIMIT,
                                f"stopped after printing more than {lim.output_bytes:,} bytes",
                            )
                        elif what == "reply" and len(reply) > reply_cap:
                            stopped = (
                                SandboxStatus.BAD_RESULT,
                                f"the result is over the {lim.result_bytes:,}-byte limit",
                            )
        finally:
            sel.close()
            if pidfd is not None:
                os.close(pidfd)
            if not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
        _kill_group(proc)
        text_out = output[: lim.output_bytes].decode("utf-8", "replace")
        setup, rest = _split_setup(bytes(reply))
        if setup is not None and setup.get("setup") == "failed":
            self._refused_setup(setup)
        layers = self.layers_in_force() if setup is not None else self._host_layers()
        if stopped is not None:
            return SandboxResult(stopped[0], message=stopped[1], output=text_out, layers=layers)
        if setup is None:
            status, message = self._death(proc.returncode)
            return SandboxResult(
                status,
                message=f"{message} (before its layers were set: the tool did not run)",
                output=text_out,
                layers=layers,
            )
        result = self._read_reply(rest, proc.returncode, text_out, lim.result_bytes)
        return replace(result, layers=layers)

    def _host_layers(self) -> tuple[str, ...]:
        """The layers in force when the child never confirmed its own: those the host set."""
        return tuple(n for n in self.layers_in_force() if n not in self._requested_child_layers())

    def _refused_setup(self, setup: dict[str, Any]) -> None:
        """The child could not set a layer (it says so before any tool code runs): the machine
        lacks it. Only a layer the host asked for can be named."""
        asked = self._requested_child_layers()
        layer = setup.get("layer")
        name = layer if isinstance(layer, str) and layer in asked else "one of " + ", ".join(asked)
        detail = _clean_text(setup.get("message"), 500)
        raise SandboxUnavailable(
            f"the sandbox child could not set the {name} layer on this machine: {detail}; "
            f"to get it: {HOW_TO_GET.get(name, 'see `formalist sandbox layers`')}"
        )

    def _read_reply(
        self, reply: bytes, returncode: int | None, output: str, result_bytes: int | None = None
    ) -> SandboxResult:
        """The tool's reply: written by code the tool could reach, so read as its own data. It
        must be strict JSON (no NaN, no infinities, valid UTF-8) of one of the shapes the child
        writes; a value must be JSON that any reader can hold (see ``check_result_value``)."""
        if not reply:
            died, message = self._death(returncode)
            return SandboxResult(died, message=message, output=output)
        try:
            obj = strict_json_loads(reply)
        except (ValueError, RecursionError) as e:
            return SandboxResult(
                SandboxStatus.BAD_RESULT,
                message=f"the reply is not strict JSON ({_clean_text(e, 200)})",
                output=output,
            )
        status = obj.get("status") if isinstance(obj, dict) else None
        cap = self.policy.limits.result_bytes if result_bytes is None else result_bytes
        if status == "ok" and "value" in obj:
            if len(reply) > cap + 1024:  # the value's JSON and the few bytes around it
                return SandboxResult(
                    SandboxStatus.BAD_RESULT,
                    message=f"the result is over the {cap:,}-byte limit",
                    output=output,
                )
            problem = check_result_value(obj["value"])
            if problem:
                return SandboxResult(
                    SandboxStatus.BAD_RESULT, message=f"the result {problem}", output=output
                )
            return SandboxResult(SandboxStatus.OK, value=obj["value"], output=output)
        if status == "error":
            line = obj.get("line")
            ok_line = isinstance(line, int) and not isinstance(line, bool) and 0 < line < 10**7
            return SandboxResult(
                SandboxStatus.ERROR,
                error_type=_clean_text(obj.get("type", "Exception"), 100) or "Exception",
                message=_clean_text(obj.get("message", ""), 2000),
                line=line if ok_line else None,
                output=output,
            )
        if status == "memory":
            mb = self.policy.limits.memory_mb
            return SandboxResult(
                SandboxStatus.MEMORY_LIMIT,
                message=f"ran out of its {mb} MiB of memory",
                output=output,
            )
        if status == "bad_result":
            return SandboxResult(
                SandboxStatus.BAD_RESULT,
                message=_clean_text(obj.get("message", ""), 2000),
                output=output,
            )
        shown = _clean_text(json.dumps(status)[:60] if status is not None else "none", 80)
        return SandboxResult(
            SandboxStatus.BAD_RESULT,
            message=f"the tool's reply is malformed (status {shown}); nothing of it is used",
            output=output,
        )

    def _death(self, returncode: int | None) -> tuple[SandboxStatus, str]:
        """What a child that ended without a reply died of."""
        if returncode is None:
            return SandboxStatus.CRASHED, "ended without a reply"
        sig = -returncode if returncode < 0 else 0
        if self._use("namespaces") and returncode > 128:  # bubblewrap reports 128 + signal
            sig = returncode - 128
        if sig == signal.SIGXCPU:
            return (
                SandboxStatus.CPU_LIMIT,
                f"stopped at the CPU-time limit of {self.policy.limits.cpu_s} s",
            )
        if (
            sig == signal.SIGKILL
        ):  # we did not send it: the hard CPU limit or the kernel's OOM killer
            return (
                SandboxStatus.CPU_LIMIT,
                "killed at the hard CPU-time limit (or by the kernel's memory killer)",
            )
        if sig:
            try:
                name = _SIGNALS.get(signal.Signals(sig), signal.Signals(sig).name)
            except ValueError:
                name = f"signal {sig}"
            return SandboxStatus.CRASHED, f"killed by {name} without a reply"
        return SandboxStatus.CRASHED, f"exited with status {returncode} without a reply"


MAX_RESULT_DEPTH = 100
"""Deepest nesting of lists and objects a result may have (deeper values break readers that
recurse, and printing them indented grows with the square of the depth)."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"the number {text[:40]} is out of a float's range")
    return x


def strict_json_loads(data: bytes | str) -> Any:
    """JSON as RFC 8259 has it: UTF-8, no NaN or Infinity, no number that overflows a float."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite)


def check_result_value(value: Any) -> str | None:
    """Why ``value`` (decoded JSON) cannot be a tool's result, or None: nested deeper than
    ``MAX_RESULT_DEPTH``, or holding a string with a lone surrogate (not Unicode text: it
    cannot be written as UTF-8)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return (
                    f"holds a lone surrogate ({_describe_surrogate(v)}), which is not Unicode text"
                )
        elif isinstance(v, float):
            if not math.isfinite(v):
                return f"holds {v}, which JSON cannot hold"
        elif isinstance(v, (list, dict)):
            if depth >= MAX_RESULT_DEPTH:
                return f"is nested more than {MAX_RESULT_DEPTH} levels deep"
            if isinstance(v, dict):
                stack += [(k, depth + 1) for k in v]
                stack += [(x, depth + 1) for x in v.values()]
            else:
                stack += [(x, depth + 1) for x in v]
    return None


def _describe_surrogate(s: str) -> str:
    m = _SURROGATE.search(s)
    return f"U+{ord(m.group()):04X}" if m else "?"


def _clean_text(x: Any, limit: int) -> str:
    """A string from the tool's reply, safe to print: at most ``limit`` characters, lone
    surrogates replaced."""
    text = x if isinstance(x, str) else str(x)
    return _SURROGATE.sub("\ufffd", text[:limit])


def _split_setup(reply: bytes) -> tuple[dict[str, Any] | None, bytes]:
    """The child's setup line (see ``sandbox_child``) and the tool's reply after it. The setup
    line is written before the tool's code is loaded: None when there is none (the child died
    before its layers were set)."""
    head, sep, rest = reply.partition(b"\n")
    if not sep:
        return None, b""
    try:
        setup = json.loads(head)
    except ValueError:
        return None, b""
    if not isinstance(setup, dict) or setup.get("setup") not in ("ok", "failed"):
        return None, b""
    return setup, rest


def _line_of(d: Diagnostic) -> int | None:
    if d.location.startswith("line "):
        try:
            return int(d.location.split()[1].rstrip(","))
        except ValueError:
            return None
    return None


def _exited(pid: int) -> bool:
    """Whether ``pid`` has exited, without reaping it (its group id stays reserved)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child's process group, then reap the child (no zombie, no orphan)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
        proc.kill()
        proc.wait()
