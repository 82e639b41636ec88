"""clingo for ASP programs, run in a child process that the time limit can kill.

Grounding cannot be interrupted inside a process, so ``solve`` runs ``solvers/clingo_worker.py`` in a
process group of its own, with an address-space limit (``memory_bytes``, 2 GiB by default). The worker
stops its own search at the deadline and reports the best model found; when it does not report
``GRACE_S`` seconds after the deadline (a grounding blow-up), its process group is killed and reaped,
and the last model it streamed, if any, comes back with status TIMEOUT.

Status mapping: OPTIMAL when optimization was proven; FEASIBLE for an answer set of a program with
nothing to optimize (no ``#minimize``/``#maximize``/weak constraints: clingo stops at the first answer
set, and there is no optimum to claim); TIMEOUT when time ran out (with the best answer set found, if any); INFEASIBLE when
clingo proves there is no answer set, with a ``Diagnosis`` naming the integrity constraints (and
choice-rule bounds) of a minimal unsatisfiable core; ERROR when the worker ran out of memory or failed.
Syntax and safety errors raise ``ArtifactError`` (kinds ``parse``, ``safety``, ``ground``).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import ArtifactError, SolverFault
from formalizers.asp.program import (
    AspProgram,
    artifact_error,
    comment_for,
    forbidden_directives,
    parse_messages,
    source_text,
)
from solvers.base import Diagnosis, Limits, SolveResult, Status, Supports

SUPPORTS = Supports(
    name="clingo",
    kinds=("asp",),
    features=frozenset({"answer set programs"}),
    summary="clingo's Python API in a child process with time and memory limits",
    modules=("clingo",),
)
"""What this backend runs: clingo programs (``solve``), optimization statements included."""

DEFAULT_MEMORY_BYTES = 2 * 1024**3
"""Address-space limit of the worker process, in bytes (2 GiB)."""

GRACE_S = 0.5
"""Seconds the worker is asked to stop before it is killed, to report its best model in time (a
quarter of the time when that is less)."""

WORKER = Path(__file__).with_name("clingo_worker.py")


@dataclass(frozen=True, slots=True)
class WorkerRun:
    """What one worker process did: its ``events`` in order (parsed JSON lines), whether it was
    ``killed`` at the deadline, its ``returncode``, the tail of its ``stderr``, its ``pid`` and the
    wall time ``elapsed_s`` in seconds from start to reaped."""

    events: list[dict[str, Any]]
    killed: bool
    returncode: int | None
    stderr: str
    pid: int
    elapsed_s: float

    def first(self, name: str) -> dict[str, Any] | None:
        """The first event called ``name`` (None when there is none)."""
        return next((e for e in self.events if e.get("event") == name), None)

    def models(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == "model"]


def run_worker(
    request: dict[str, Any],
    time_s: float,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    on_start: Callable[[int], None] | None = None,
) -> WorkerRun:
    """Run the worker on ``request`` for at most ``time_s`` seconds, start and reaping included.

    The worker gets ``deadline`` (wall-clock epoch seconds) added to its request: ``GRACE_S`` (at
    most a quarter of ``time_s``) before the kill, so it reports its best model before then. ``on_start`` is
    called with the worker's pid once it runs. The worker and its process group are always gone when
    this returns, reaped, whatever happened; ``SolverFault`` when it cannot be started at all.
    """
    t0 = time.monotonic()
    grace = min(GRACE_S, 0.25 * time_s)
    payload = json.dumps({**request, "deadline": time.time() + time_s - grace}).encode()
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", str(WORKER), str(int(memory_bytes))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        except OSError as e:
            raise SolverFault(f"cannot start the clingo worker: {e}") from e
        events: list[dict[str, Any]] = []
        killed = True
        try:
            if on_start is not None:
                on_start(proc.pid)
            killed = _exchange(proc, payload, t0 + time_s, events)
        finally:
            _stop(proc, patience=0.0 if killed else 2.0)
        err.seek(0)
        stderr = err.read()[-4000:].decode("utf-8", errors="replace")
    return WorkerRun(events, killed, proc.returncode, stderr, proc.pid, time.monotonic() - t0)


def _exchange(
    proc: subprocess.Popen[bytes], payload: bytes, deadline: float, events: list[dict[str, Any]]
) -> bool:
    """Write ``payload`` to the worker and collect its events until it closes stdout (False) or the
    ``deadline`` (``time.monotonic()``) passes (True). Never blocks past the deadline."""
    assert proc.stdin is not None and proc.stdout is not None
    out_fd, in_fd = proc.stdout.fileno(), proc.stdin.fileno()
    os.set_blocking(out_fd, False)
    os.set_blocking(in_fd, False)
    pending = memoryview(payload)
    buf = bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(out_fd, selectors.EVENT_READ)
        sel.register(in_fd, selectors.EVENT_WRITE)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            for key, _ in sel.select(left):
                if key.fd == in_fd:
                    try:
                        pending = pending[os.write(in_fd, pending[:65536]) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        pending = pending[:0]  # the worker is gone; its exit status says why
                    if not pending:
                        sel.unregister(in_fd)
                        proc.stdin.close()
                    continue
                chunk = os.read(out_fd, 1 << 16)
                if not chunk:
                    _events(buf + b"\n", events)
                    return False
                buf += chunk
                cut = buf.rfind(b"\n") + 1
                if cut:
                    _events(buf[:cut], events)
                    del buf[:cut]


def _events(data: bytes | bytearray, events: list[dict[str, Any]]) -> None:
    for line in bytes(data).splitlines():
        if line.strip():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)


def _stop(proc: subprocess.Popen[bytes], patience: float) -> None:
    """Give the worker ``patience`` seconds to exit, then kill its process group; reap it."""
    try:
        proc.wait(timeout=patience)
    except subprocess.TimeoutExpired:
        # The leader is not reaped yet, so its pid still names this process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _solver_name() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"clingo {version('clingo')}"
    except PackageNotFoundError:  # pragma: no cover - clingo is a core dependency
        return "clingo"


def program_text(program: str | AspProgram) -> str:
    """The text of ``program``; ``ArtifactError`` when it uses ``#script`` or ``#include``."""
    text = program.text if isinstance(program, AspProgram) else program
    bad = forbidden_directives(text)
    if bad:
        raise ArtifactError("parse", bad, "the program uses a directive that is not allowed")
    return text


def _warnings(result: dict[str, Any], text: str) -> str:
    """clingo's warnings and infos (such as atoms that occur in no rule head), one per line."""
    lines = []
    for m in parse_messages([tuple(x) for x in result.get("messages", [])], text):
        if m.severity in ("warning", "info"):
            where = f"line {m.line}, column {m.column}: " if m.line else ""
            lines.append(f"{where}{m.text}" + (f": {m.detail}" if m.detail else ""))
    return "\n".join(lines[:10])


def _fault(run: WorkerRun, memory_bytes: int, result: dict[str, Any] | None) -> str:
    """Why the worker failed, in words."""
    grounded = run.first("grounded") is not None
    where = "searching" if grounded else "grounding"
    detail = (result or {}).get("detail", "")
    if (result or {}).get("outcome") == "memory" or "MemoryError" in run.stderr:
        return (
            f"clingo ran out of memory ({memory_bytes / 2**20:,.0f} MiB) while {where}: the program "
            "instantiates too many rules; look for rules that join large domains"
        )
    tail = run.stderr.strip().splitlines()[-3:] if run.stderr.strip() else []
    return (
        f"the clingo worker failed while {where} (exit code {run.returncode})"
        + (f": {detail}" if detail else "")
        + (f": {' / '.join(tail)}" if tail else "")
    )


def constraint_member(program: str, info: dict[str, Any]) -> dict[str, Any]:
    """A diagnosis member for one guarded constraint reported by the worker: ``name`` (``constraint
    at line L`` or ``choice rule at line L``), ``family``, ``text`` (its source) and ``description``
    (its comment, or the comment lines right above it)."""
    (line, col), (end_line, end_col) = (
        (int(x) for x in info["begin"]),
        (int(x) for x in info["end"]),
    )
    what = "constraint" if info["family"] == "integrity constraint" else "choice rule"
    return {
        "name": f"{what} at line {line}",
        "family": info["family"],
        "text": source_text(program, (line, col), (end_line, end_col)),
        "description": comment_for(program, line),
    }


def _unique_names(members: list[dict[str, Any]], infos: list[dict[str, Any]]) -> None:
    names = [m["name"] for m in members]
    for m, info in zip(members, infos, strict=True):
        if names.count(m["name"]) > 1:
            m["name"] += f", column {info['begin'][1]}"


def _diagnosis(run: WorkerRun, text: str, time_s: float) -> Diagnosis:
    found = run.first("diagnosis")
    if found is None:
        return Diagnosis(
            "infeasible",
            "the program has no answer set; the constraints involved could not be found within "
            f"the time limit of {time_s:g} s",
            (),
            irreducible=False,
        )
    infos = list(found.get("constraints", []))
    members = [constraint_member(text, info) for info in infos]
    _unique_names(members, infos)
    if not members:
        summary = (
            "the program has no answer set even without its integrity constraints and choice-rule "
            "bounds: its rules contradict themselves (for example `p :- not p.`)"
        )
    else:
        summary = (
            "the program has no answer set: "
            + (
                "this constraint can never hold"
                if len(members) == 1
                else f"these {len(members)} constraints cannot all hold together"
            )
            + ("" if found.get("irreducible") else " (not reduced to a minimal set)")
        )
    return Diagnosis("infeasible", summary, tuple(members), bool(found.get("irreducible")))


def solve(
    program: str | AspProgram,
    limits: Limits | None = None,
    *,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    diagnose: bool = True,
    on_start: Callable[[int], None] | None = None,
    keep_for_check: float = 0.0,
) -> SolveResult:
    """Ground and solve ``program`` with clingo within ``limits.time_s`` seconds of wall time.

    ``keep_for_check``: the search stops this many times the grounding's wall time before the
    limit, leaving that time to an independent check that grounds the program again.

    ``answer_set`` is the shown atoms of the answer set (sorted strings such as ``"color(1,red)"``),
    ``cost`` its cost per priority level (highest first; None without optimization) and
    ``objective`` the cost at the highest priority (the answer reports every level: see
    ``agent.types.Answer.objective``). ``diagnose`` asks, for unsatisfiable programs,
    for the constraints of a minimal unsatisfiable core (within the same time limit). ``on_start``
    receives the worker's pid. Raises ``ArtifactError`` for syntax and safety errors.
    """
    limits = limits or Limits()
    text = program_text(program)
    run = run_worker(
        {"mode": "solve", "program": text, "diagnose": diagnose, "keep_for_check": keep_for_check},
        limits.time_s,
        memory_bytes,
        on_start,
    )
    solver = _solver_name()
    result = run.first("result")
    models = run.models()
    last = models[-1] if models else None
    answer = tuple(last["atoms"]) if last is not None else None
    cost = tuple(int(c) for c in last["cost"]) if last is not None and last["cost"] else None
    objective = float(cost[0]) if cost else None
    outcome = result.get("outcome") if result is not None else None
    warnings = _warnings(result, text) if result is not None else ""
    if outcome == "invalid":
        raise artifact_error(
            parse_messages([tuple(x) for x in result.get("messages", [])], text)  # type: ignore[union-attr]
            or [],
            text,
            "ground",
        )
    if (outcome is None and run.killed) or outcome == "timeout":
        stage = "search" if run.first("grounded") is not None else "grounding"
        message = f"{stage} did not finish within {limits.time_s:g} s" + (
            ""
            if stage == "search"
            else ": the program instantiates too many rules; look for rules that join large domains"
        )
        return SolveResult(
            Status.TIMEOUT,
            solver,
            objective,
            time_s=run.elapsed_s,
            message="\n".join(filter(None, [message, warnings])),
            answer_set=answer,
            cost=cost,
        )
    if outcome == "optimal" and answer is not None:
        # Without #minimize, #maximize or weak constraints there is nothing to prove optimal.
        return SolveResult(
            Status.OPTIMAL if result.get("optimizing") else Status.FEASIBLE,  # type: ignore[union-attr]
            solver,
            objective,
            time_s=run.elapsed_s,
            message=warnings,
            answer_set=answer,
            cost=cost,
        )
    if outcome == "unsat":
        return SolveResult(
            Status.INFEASIBLE,
            solver,
            time_s=run.elapsed_s,
            message=warnings,
            diagnosis=_diagnosis(run, text, limits.time_s) if diagnose else None,
        )
    return SolveResult(
        Status.ERROR,
        solver,
        time_s=run.elapsed_s,
        message=_fault(run, memory_bytes, result),
    )
