"""The child process that runs clingo for ``solvers.clingo_backend``; not imported by the service.

Grounding cannot be interrupted from inside a process, so every clingo run happens here, in a process
the parent can kill. The parent starts it as ``python -I clingo_worker.py MEMORY_BYTES``, writes one
JSON request on stdin and reads JSON events, one per line, from stdout:

- ``{"event": "grounded", "seconds": S, "search_until": EPOCH_S}`` once grounding is done (when
  the search will stop);
- ``{"event": "model", "atoms": [...], "cost": [...]}`` for every model found (improving ones while
  optimizing), so that the best model so far survives a kill at the deadline;
- ``{"event": "result", "outcome": ..., ...}`` with the outcome of the search or check;
- ``{"event": "diagnosis", ...}`` with an unsatisfiable core, when one was asked for and found;
- ``{"event": "end"}`` last.

Requests: ``{"mode": "solve", "program": TEXT, "deadline": EPOCH_S, "diagnose": BOOL,
"keep_for_check": K}`` solves (the search stops ``K`` times the grounding's seconds before the
deadline, so that an independent check, which grounds the program again, has that time left after
it, but keeps at least half of the time left after grounding; K is 0 when absent);
``{"mode": "verify", "program": TEXT, "deadline": EPOCH_S, "claim": [ATOM, ...]}`` checks that the
claimed shown atoms are exactly those of some answer set and reports its best cost; when they are
not, it emits a ``diagnosis`` over the claimed symbols, then (time permitting) a second one that also
names the integrity constraints involved (the last one counts). ``deadline`` is
wall-clock time (``time.time()``) at which to stop searching and report what is known.

Unsatisfiable cores name integrity constraints: every ``:- body.`` becomes ``:- body, G.`` and every
choice rule with bounds ``L { ... } U :- body.`` becomes ``{ ... } :- body.`` plus
``:- body, not L { ... } U, G.``, where ``G`` is a fresh choice atom ``__formalist_ic(K)`` assumed true.
With every guard assumed true the program means what it meant; the guards in clasp's unsatisfiable
core are the constraints that cannot hold together. The core is then shrunk by deletion.

Only the standard library and clingo are imported here: the worker runs in isolated mode (``-I``),
without the project on its path.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

GUARD = "__formalist_ic"
"""Name of the guard atoms added to integrity constraints for unsatisfiable cores."""

MARGIN_S = 0.05
"""Seconds before the deadline at which the worker stops its own search, to report in time."""


def emit(event: dict[str, Any]) -> None:
    """Write one event as a JSON line and flush it, so the parent has it even if it kills us next."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def remaining(deadline: float) -> float:
    """Seconds left before ``deadline`` less the reporting margin (never negative)."""
    return max(0.0, deadline - time.time() - MARGIN_S)


class Messages:
    """clingo's log messages (errors, warnings, infos), each ``[code, text]``, at most ``limit``."""

    def __init__(self, limit: int = 50) -> None:
        self.items: list[list[str]] = []
        self.limit = limit

    def __call__(self, code: Any, text: str) -> None:
        if len(self.items) < self.limit:
            self.items.append([getattr(code, "name", str(code)), text])


def is_memory_error(e: BaseException) -> bool:
    """Whether an exception from clingo means it ran out of memory (``std::bad_alloc``)."""
    return isinstance(e, MemoryError) or "bad_alloc" in str(e)


# -- guarded program -----------------------------------------------------------------------------
def guarded_program(clingo: Any, ctl: Any, text: str, messages: Messages) -> list[dict[str, Any]]:
    """Add ``text`` to ``ctl`` with a guard atom on every integrity constraint and choice-rule bound.

    Returns one entry per guard, in order: ``{"id", "family", "begin": [line, byte column],
    "end": [line, byte column]}`` (1-based; the end column is one past the last byte).
    """
    from clingo import ast

    stmts: list[Any] = []
    ast.parse_string(text, stmts.append, logger=messages)
    guards: list[dict[str, Any]] = []
    out: list[Any] = []

    def guard_literal(loc: Any, k: int) -> Any:
        term = ast.SymbolicTerm(loc, clingo.Number(k))
        atom = ast.SymbolicAtom(ast.Function(loc, GUARD, [term], False))
        return ast.Literal(loc, ast.Sign.NoSign, atom)

    def record(stmt: Any, family: str) -> int:
        loc = stmt.location
        guards.append(
            {
                "id": len(guards),
                "family": family,
                "begin": [loc.begin.line, loc.begin.column],
                "end": [loc.end.line, loc.end.column],
            }
        )
        return len(guards) - 1

    for stmt in stmts:
        if stmt.ast_type != ast.ASTType.Rule:
            out.append(stmt)
            continue
        head, loc = stmt.head, stmt.location
        if (
            head.ast_type == ast.ASTType.Literal
            and head.atom.ast_type == ast.ASTType.BooleanConstant
            and not head.atom.value
        ):
            k = record(stmt, "integrity constraint")
            out.append(ast.Rule(loc, head, [*stmt.body, guard_literal(loc, k)]))
        elif head.ast_type == ast.ASTType.Aggregate and (
            head.left_guard is not None or head.right_guard is not None
        ):
            k = record(stmt, "choice rule bounds")
            free = ast.Aggregate(loc, None, head.elements, None)
            out.append(ast.Rule(loc, free, stmt.body))
            bounded = ast.Aggregate(loc, head.left_guard, head.elements, head.right_guard)
            broken = ast.Literal(loc, ast.Sign.Negation, bounded)
            false = ast.Literal(loc, ast.Sign.NoSign, ast.BooleanConstant(False))
            out.append(ast.Rule(loc, false, [*stmt.body, broken, guard_literal(loc, k)]))
        else:
            out.append(stmt)
    with ast.ProgramBuilder(ctl) as builder:
        for stmt in out:
            builder.add(stmt)
    if guards:
        ctl.add("base", [], f"{{ {GUARD}(0..{len(guards) - 1}) }}.")
    return guards


# -- solving with assumptions --------------------------------------------------------------------
def solve_within(
    ctl: Any,
    deadline: float,
    assumptions: Sequence[int] = (),
    on_model: Callable[[Any], None] | None = None,
) -> tuple[str, list[int] | None]:
    """One search, stopped at ``deadline``: ``("sat" | "unsat" | "unknown", core or None)``.

    ``"sat"`` means the search finished with a model (for optimization: the last model is optimal);
    ``"unknown"`` that time ran out (models found so far went to ``on_model``). The core lists the
    assumption literals of an unsatisfiable core (empty: unsatisfiable without any assumption).
    """
    cores: list[list[int]] = []
    with ctl.solve(
        assumptions=list(assumptions), on_model=on_model, on_core=cores.append, async_=True
    ) as handle:
        if not handle.wait(remaining(deadline)):
            handle.cancel()
        res = handle.get()
        # clingo 5.8 does not call ``on_core`` when solving asynchronously; the handle keeps it.
        if res.unsatisfiable and hasattr(handle, "core"):
            cores.append(list(handle.core()))
    if res.unsatisfiable:
        return "unsat", list(cores[-1]) if cores else []
    if res.satisfiable and (res.exhausted or not res.interrupted):
        return "sat", None
    return "unknown", None


def minimise_core(ctl: Any, core: list[int], deadline: float) -> tuple[list[int], bool]:
    """Shrink ``core`` by deletion: drop each literal whose removal leaves the rest unsatisfiable.

    Returns the core and whether it is irreducible (False when the deadline came first).
    """
    current = list(core)
    i = 0
    while i < len(current):
        if remaining(deadline) <= 0:
            return current, False
        trial = current[:i] + current[i + 1 :]
        outcome, smaller = solve_within(ctl, deadline, trial)
        if outcome == "unsat":
            # The solver's core of the trial is a subset of it, often a smaller one.
            inside = set(smaller or ())
            current = [lit for lit in trial if lit in inside]
        elif outcome == "sat":
            i += 1
        else:
            return current, False
    return current, True


def guard_literals(clingo: Any, ctl: Any, guards: list[dict[str, Any]]) -> dict[int, int]:
    """Program literal of each guard atom, by literal: ``{literal: guard id}``."""
    out = {}
    for g in guards:
        atom = ctl.symbolic_atoms[clingo.Function(GUARD, [clingo.Number(g["id"])])]
        if atom is not None:
            out[atom.literal] = g["id"]
    return out


# -- modes ---------------------------------------------------------------------------------------
def shown(model: Any) -> list[str]:
    """The shown atoms and terms of a model, as sorted strings."""
    return sorted(str(s) for s in model.symbols(shown=True))


def run_solve(clingo: Any, req: dict[str, Any]) -> None:
    deadline = float(req["deadline"])
    messages = Messages()
    ctl = clingo.Control(["--warn=all"], logger=messages)
    t0 = time.time()
    try:
        ctl.add("base", [], req["program"])
        ctl.ground([("base", [])])
    except RuntimeError as e:
        outcome = "memory" if is_memory_error(e) else "invalid"
        emit({"event": "result", "outcome": outcome, "messages": messages.items, "detail": str(e)})
        return
    grounded_s = time.time() - t0
    # Leave the check, which grounds again, about what grounding took here; the search keeps at
    # least half of what is left after grounding.
    keep = max(0.0, float(req.get("keep_for_check", 0.0))) * grounded_s
    now = time.time()
    deadline = max(now + 0.5 * (deadline - now), deadline - keep)
    emit({"event": "grounded", "seconds": grounded_s, "search_until": deadline})
    costs: list[list[int]] = []

    def on_model(m: Any) -> None:
        costs.append(list(m.cost))
        emit({"event": "model", "atoms": shown(m), "cost": list(m.cost)})

    outcome, _ = solve_within(ctl, deadline, on_model=on_model)
    optimizing = bool(costs and costs[-1])
    emit(
        {
            "event": "result",
            "outcome": {"sat": "optimal", "unsat": "unsat", "unknown": "timeout"}[outcome],
            "optimizing": optimizing,
            "messages": messages.items,
        }
    )
    if outcome == "unsat" and req.get("diagnose", True):
        del ctl
        diagnose(clingo, req["program"], deadline)


def diagnose(clingo: Any, program: str, deadline: float) -> None:
    """Find and shrink an unsatisfiable core over the program's guarded constraints."""
    ctl = clingo.Control(["--opt-mode=ignore"], logger=Messages())
    guards = guarded_program(clingo, ctl, program, Messages())
    ctl.ground([("base", [])])
    lits = guard_literals(clingo, ctl, guards)
    outcome, core = solve_within(ctl, deadline, list(lits))
    if outcome != "unsat" or core is None:
        return
    core = [lit for lit in core if lit in lits]
    core, irreducible = minimise_core(ctl, core, deadline)
    ids = sorted(lits[lit] for lit in core)
    emit(
        {
            "event": "diagnosis",
            "core": ids,
            "irreducible": irreducible,
            "constraints": [guards[i] for i in ids],
        }
    )


class Output:
    """clingo observer collecting the output table: each shown symbol with the literals that show it.

    A shown atom comes with its program atom (0 for a fact); a shown term (``#show t : body.``) with
    the literals of its condition, once per ``#show`` that can show it. Only the pairs are stored
    while grounding (a large program shows a hundred thousand symbols); ``table`` groups them.
    """

    def __init__(self, guarded: bool = False) -> None:
        self.atoms: list[tuple[Any, int]] = []
        self.terms: list[tuple[Any, list[int]]] = []
        self.guarded = guarded

    def output_atom(self, symbol: Any, atom: int) -> None:
        self.atoms.append((symbol, atom))

    def output_term(self, symbol: Any, condition: Sequence[int]) -> None:
        self.terms.append((symbol, list(condition)))

    def table(self) -> dict[Any, list[list[int]]]:
        """Each shown symbol (a clingo ``Symbol``) with its conditions (``[]``: always shown); the
        guard atoms of a ``guarded`` program are left out."""
        out: dict[Any, list[list[int]]] = {}
        for symbol, atom in self.atoms:
            if self.guarded and symbol.type.name == "Function" and symbol.name == GUARD:
                continue
            conditions = out.get(symbol)
            if conditions is None:
                out[symbol] = [[atom] if atom else []]
            else:
                conditions.append([atom] if atom else [])
        for symbol, condition in self.terms:
            out.setdefault(symbol, []).append(condition)
        return out


def claim_assumptions(
    ctl: Any, table: dict[Any, list[list[int]]], claimed: set[Any]
) -> dict[int, dict[str, Any]]:
    """Assumption literals that make exactly the ``claimed`` symbols shown, each with what it
    stands for (``{"claim": SYMBOL, "present": BOOL}``; ``member`` writes it as JSON).

    A symbol shown by one atom is assumed through that atom's own literal (true when claimed,
    false otherwise): no new atom or rule. Other symbols (facts, shown terms, several ``#show``
    conditions) get one fresh atom true exactly when the symbol is shown."""
    assume: dict[int, dict[str, Any]] = {}
    complex_: list[tuple[Any, list[list[int]]]] = []
    for symbol, conditions in table.items():
        if len(conditions) == 1 and len(conditions[0]) == 1 and conditions[0][0] > 0:
            present = symbol in claimed
            lit = conditions[0][0]
            assume[lit if present else -lit] = {"claim": symbol, "present": present}
        else:
            complex_.append((symbol, conditions))
    if complex_:
        with ctl.backend() as backend:
            for symbol, conditions in complex_:
                aux = backend.add_atom()
                for cond in conditions:
                    backend.add_rule([aux], cond)
                present = symbol in claimed
                assume[aux if present else -aux] = {"claim": symbol, "present": present}
    return assume


def member(meaning: dict[str, Any]) -> dict[str, Any]:
    """An assumption's meaning as JSON (the claimed symbol as text)."""
    return {k: str(v) if k == "claim" else v for k, v in meaning.items()}


def read_claim(clingo: Any, texts: list[str]) -> tuple[set[Any], list[str]]:
    """The claimed symbols, and the texts that are not clingo terms."""
    claim: set[Any] = set()
    unreadable: list[str] = []
    for text in texts:
        try:
            claim.add(clingo.parse_term(text))
        except RuntimeError:
            unreadable.append(text)
    return claim, unreadable


def run_verify(clingo: Any, req: dict[str, Any]) -> None:
    """Ground the program as it is (no rewriting), assume exactly the claimed symbols shown and
    search: the cost is that of grounding the program once more plus a search that the
    assumptions mostly decide by propagation. Only when the claim fails is the program ground a
    second time with its constraints guarded, to name the constraints it breaks."""
    deadline = float(req["deadline"])
    messages = Messages()
    ctl = clingo.Control(logger=messages)
    output = Output()
    ctl.register_observer(output)
    try:
        ctl.add("base", [], req["program"])
        ctl.ground([("base", [])])
    except RuntimeError as e:
        outcome = "memory" if is_memory_error(e) else "invalid"
        emit({"event": "result", "outcome": outcome, "messages": messages.items, "detail": str(e)})
        return
    emit({"event": "grounded"})
    claimed, unreadable = read_claim(clingo, req["claim"])
    table = output.table()
    never_shown = sorted(str(s) for s in claimed if s not in table)
    assume = claim_assumptions(ctl, table, claimed)
    costs: list[list[int]] = []
    outcome, core = solve_within(
        ctl, deadline, list(assume), on_model=lambda m: costs.append(list(m.cost))
    )
    emit(
        {
            "event": "result",
            "outcome": {"sat": "sat", "unsat": "unsat", "unknown": "timeout"}[outcome],
            "cost": costs[-1] if costs else None,
            "proven": outcome == "sat",
            "checked": len(table),
            "never_shown": never_shown,
            "unreadable": unreadable,
            "messages": messages.items,
        }
    )
    if outcome != "unsat" or core is None:
        return
    # Which claimed symbols conflict, from this grounding's core (cheap: the core is small) ...
    ctl.configuration.solve.opt_mode = "ignore"
    core, irreducible = minimise_core(ctl, [lit for lit in core if lit in assume], deadline)
    emit(
        {
            "event": "diagnosis",
            "members": [member(assume[lit]) for lit in core],
            "irreducible": irreducible,
        }
    )
    del ctl
    # ... then, if time is left, which constraints the claim breaks (guarded program).
    diagnose_claim(clingo, req["program"], claimed, deadline)


def diagnose_claim(clingo: Any, program: str, claimed: set[Any], deadline: float) -> None:
    """With the claim assumed and every integrity constraint and choice-rule bound guarded, find
    and shrink an unsatisfiable core; emit its members (claims and constraints)."""
    ctl = clingo.Control(["--opt-mode=ignore"], logger=Messages())
    output = Output(guarded=True)
    ctl.register_observer(output)
    guards = guarded_program(clingo, ctl, program, Messages())
    if remaining(deadline) <= 0:
        return
    ctl.ground([("base", [])])
    assume = claim_assumptions(ctl, output.table(), claimed)
    for lit, gid in guard_literals(clingo, ctl, guards).items():
        assume[lit] = {"guard": gid}
    outcome, core = solve_within(ctl, deadline, list(assume))
    if outcome != "unsat" or core is None:
        return
    core, irreducible = minimise_core(ctl, [lit for lit in core if lit in assume], deadline)
    members = [member(assume[lit]) for lit in core]
    for m in members:
        if "guard" in m:
            m.update(guards[m["guard"]])
    emit({"event": "diagnosis", "members": members, "irreducible": irreducible})


def main(argv: list[str]) -> int:
    memory_bytes = int(argv[1]) if len(argv) > 1 else 0
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    req = json.loads(sys.stdin.read())
    try:
        import clingo
    except ImportError as e:
        emit({"event": "result", "outcome": "crash", "detail": f"clingo is not installed: {e}"})
        return 0
    try:
        if req["mode"] == "solve":
            run_solve(clingo, req)
        elif req["mode"] == "verify":
            run_verify(clingo, req)
        else:
            emit({"event": "result", "outcome": "crash", "detail": f"unknown mode {req['mode']}"})
    except MemoryError:
        emit({"event": "result", "outcome": "memory", "detail": "out of memory"})
    except RuntimeError as e:
        outcome = "memory" if is_memory_error(e) else "crash"
        emit({"event": "result", "outcome": outcome, "detail": str(e)})
    emit({"event": "end"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
