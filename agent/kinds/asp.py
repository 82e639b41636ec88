"""Logic, configuration and combinatorial requests: clingo programs (answer set programming)."""

from __future__ import annotations

import re
from collections import defaultdict

from agent.errors import ArtifactError, Diagnostic
from agent.kinds.base import (
    MIN_VERIFY_S,
    Kind,
    Options,
    solver_limits,
    verification_failure,
    verify_seconds,
    verify_share,
)
from agent.llm.chat import Chat
from formalizers.asp.formalizer import AspFormalizer
from formalizers.asp.program import (
    AspProgram,
    check_program,
    code_only,
    looks_like_clingo,
    parses,
)
from formalizers.base import Artifact
from formalizers.offline.milp_files import looks_like_cplex_lp
from solvers.base import Limits, SolveResult, Status, Verification

MAX_ATOMS_SHOWN = 25
"""Atoms listed per predicate in an explanation; the rest are counted."""

ASP_SUFFIXES = (".asp", ".clingo", ".gringo")
"""File names that are clingo programs whatever they hold (``.lp`` is shared with CPLEX LP)."""


VERIFY_FRACTION, VERIFY_LEAST_S, VERIFY_MOST_S = 0.1, 0.4, 30.0
"""The check's share of a request's time limit, kept from clingo up front (see ``verify_share``)."""

KEEP_FOR_CHECK = 3.5
"""And, as the check grounds the whole program again: clingo's search stops this many times its
grounding's wall time before its own limit (``clingo_backend.solve``'s ``keep_for_check``), so a
large program's check gets what its size needs, under load too (measured: a check of 2.8 s after
a grounding of 0.74 s, on an 8,000-node colouring at load 6; the fixed share covers the worker's
start)."""

FEATURES = frozenset({"answer set programs"})
"""What a program asks of its backend, in the words backends declare (``solvers.base.Supports``)."""


EXPLAIN_S_PER_ATOM = 10e-6
"""Time kept back from the check for explaining and writing out each atom of the answer set
(about 4 microseconds on a free core; 32,000 atoms keep back 0.32 s)."""


def solve_limits(options: Options) -> Limits:
    """clingo's limits: what is left of the request's time, less the check's share."""
    return solver_limits(
        options, verify_share(options, VERIFY_FRACTION, VERIFY_LEAST_S, VERIFY_MOST_S)
    )


def verify_limits(result: SolveResult, opts: Options | None = None) -> Limits:
    """Time for the independent check. Within a request (``opts.deadline`` set): what is left of
    its time (the share kept from clingo, and whatever clingo did not use) less what writing out
    the answer set will take (``EXPLAIN_S_PER_ATOM``), at least ``MIN_VERIFY_S``, never a fresh
    full limit. A check on its own: three times the solve's wall
    time, but no more than the time limit, and at least 5 s."""
    if opts is not None and opts.deadline is not None:
        answer = EXPLAIN_S_PER_ATOM * len(result.answer_set or ())
        return Limits(time_s=max(MIN_VERIFY_S, verify_seconds(opts) - answer))
    cap = opts.limits.time_s if opts is not None else float("inf")
    return Limits(time_s=max(5.0, min(3.0 * result.time_s, cap)))


class AspKind(Kind):
    """Answer set programs: clingo ``.lp`` files (told from CPLEX LP by content), ``.asp`` files,
    inline programs, and requests a language model writes as programs. Solved by clingo in a child
    process, re-checked by grounding again with the answer set enforced."""

    name = "asp"
    follow_up = (
        'the program is written again with the follow-up: "now use only 3 colours", "also '
        'keep nodes 1 and 4 apart"'
    )
    words: tuple[str, ...] = (
        "answer set",
        "clingo",
        "puzzle",
        "riddle",
        "sudoku",
        "queens",
        "colouring",
        "coloring",
        "colour",
        "color",
        "neighbour",
        "neighbor",
        "adjacent",
        "seating",
        "configuration",
        "configure",
        "timetable",
        "assign each",
        "exactly one",
        "logic puzzle",
        "who owns",
    )

    def is_formal(self, text: str, name: str) -> bool:
        low = name.lower()
        if low.endswith(ASP_SUFFIXES):
            return bool(text.strip())
        if low.endswith(".lp"):
            # CPLEX LP files end in .lp too: they start with an objective section.
            return not looks_like_cplex_lp(text) and looks_like_clingo(text)
        if low:
            return False
        return looks_like_clingo(text) and not looks_like_cplex_lp(text) and parses(text)

    def read(self, text: str, name: str, options: Options) -> Artifact:
        return Artifact("asp", "asp", AspProgram(text), text)

    def formalizer(self, client: Chat, options: Options) -> AspFormalizer:
        return AspFormalizer(client)

    def validate(self, artifact: Artifact, options: Options) -> AspProgram:
        model = artifact.model
        return check_program(model.text if isinstance(model, AspProgram) else artifact.text)

    def solve(self, validated: AspProgram, options: Options) -> SolveResult:
        # validate() ran the same checks; an error clingo finds only while grounding is the
        # program's too: it is raised (ArtifactError), not dressed as our side's ERROR.
        from agent.kinds import backend_for
        from solvers.registry import solve_with

        return solve_with(
            backend_for(self.name, options),
            self.name,
            FEATURES,
            validated,
            validated,
            solve_limits(options),
            keep_for_check=KEEP_FOR_CHECK,
        )

    def verify(
        self, validated: AspProgram, result: SolveResult, opts: Options | None = None
    ) -> Verification | None:
        if result.answer_set is None:
            return None
        from solvers.asp_verify import verify_asp

        return verify_asp(validated, result, verify_limits(result, opts))

    def explain(
        self, validated: AspProgram, result: SolveResult, verification: Verification | None
    ) -> str:
        return explain_answer_set(validated, result, verification)

    def problem(
        self, validated: AspProgram, result: SolveResult, verification: Verification | None
    ) -> ArtifactError | None:
        if verification is not None and not verification.ok and verification.conclusive:
            return verification_failure(verification, "answer set")
        if result.status in (Status.OPTIMAL, Status.FEASIBLE):
            return None
        if result.status is Status.INFEASIBLE:
            members = result.diagnosis.members if result.diagnosis is not None else ()
            diags = [
                Diagnostic(
                    m["name"],
                    f"`{m['text']}`",
                    f"from: {m['description']}" if m.get("description") else "",
                )
                for m in members
            ]
            minimal = result.diagnosis is not None and result.diagnosis.irreducible
            summary = (
                "the program has no answer set: these constraints cannot all hold together"
                + (" (a minimal unsatisfiable core)" if minimal else "")
                + ". Check each against the request: a constraint the request does not state, a "
                "wrong comparison, a choice-rule bound that is too tight, or missing facts."
                if members
                else (
                    result.diagnosis.summary
                    if result.diagnosis
                    else "the program has no answer set"
                )
            )
            if result.message:
                summary += "\nclingo also warns (a misspelt predicate?):\n" + result.message
            return ArtifactError("infeasible", diags, summary)
        return None  # TIMEOUT, ERROR, UNSUPPORTED: the status stops the loop


_PLAIN_ATOM = re.compile(r"(-?)(_*[a-z][A-Za-z0-9_']*)(?:\(([A-Za-z0-9_', -]+)\))?")
"""An atom whose arguments are constants or integers (no strings, no nested terms): its
predicate and arity read off the text."""


def group_atoms(atoms: tuple[str, ...]) -> dict[str, list[str]]:
    """Shown atoms grouped by predicate (``"color/2"``; ``"-p/1"`` for classical negation; terms
    that are not atoms under ``"terms"``), in the order given."""
    import clingo

    groups: dict[str, list[str]] = defaultdict(list)
    for text in atoms:
        # Most atoms are plain (``color(1,r)``): read those without clingo's parser, which costs
        # about 20 microseconds an atom (0.7 s for 32,000, after the limit's check has run).
        plain = _PLAIN_ATOM.fullmatch(text)
        if plain is not None:
            sign, name, args = plain.groups()
            arity = 0 if args is None else args.count(",") + 1
            groups[f"{sign}{name}/{arity}"].append(text)
            continue
        try:
            sym = clingo.parse_term(text)
        except RuntimeError:
            groups["terms"].append(text)
            continue
        if sym.type is clingo.SymbolType.Function and sym.name:
            sign = "-" if sym.negative else ""
            groups[f"{sign}{sym.name}/{len(sym.arguments)}"].append(text)
        else:
            groups["terms"].append(text)
    return dict(groups)


def explain_answer_set(
    program: AspProgram, result: SolveResult, verification: Verification | None
) -> str:
    """Status, the cost, the answer set's atoms by predicate, and the check; for an unsatisfiable
    program the constraints that cannot hold together."""
    lines: list[str] = []
    if result.answer_set is not None:
        if result.status is Status.TIMEOUT:
            head = "Best answer set found before the time limit (not proven optimal)"
        elif result.cost:
            head = "Optimal answer set"
        else:
            head = "An answer set (the program has nothing to optimize)"
        if result.cost:
            levels = ", ".join(str(c) for c in result.cost)
            head += (
                f", cost {levels} (one value per priority level, highest priority first)"
                if len(result.cost) > 1
                else f", cost {result.cost[0]}"
            )
            if "#maxim" in program.text and "#maxim" in code_only(program.text):
                head += "; clingo minimizes, so #maximize weights count as negative"
        lines.append(head + ".")
        if verification is not None:
            lines.append(f"{verification.verdict}: " + verification.message + ".")
        groups = group_atoms(result.answer_set)
        if not groups:
            lines.append("The answer set is empty: no shown atom is true.")
        for pred, atoms in groups.items():
            more = len(atoms) - MAX_ATOMS_SHOWN
            lines.append(
                f"  {pred}: {' '.join(atoms[:MAX_ATOMS_SHOWN])}"
                + (f" ... and {more} more" if more > 0 else "")
            )
        if result.message:
            lines.append("Notes from clingo:\n  " + result.message.replace("\n", "\n  "))
    elif result.status is Status.INFEASIBLE:
        lines.append("No answer set: the program is unsatisfiable.")
        if result.diagnosis is not None:
            summary = result.diagnosis.summary
            colon = ":" if result.diagnosis.members else "."
            lines.append(summary[:1].upper() + summary[1:] + colon)
            for m in result.diagnosis.members:
                desc = f"  ({m['description']})" if m.get("description") else ""
                lines.append(f"  - {m['name']}: {m['text']}{desc}")
        if result.message:
            lines.append("Notes from clingo:\n  " + result.message.replace("\n", "\n  "))
    elif result.status is Status.TIMEOUT:
        lines.append(f"No answer set found within the time limit: {result.message}.")
    else:
        lines.append(f"clingo failed: {result.message}")
    return "\n".join(lines)
