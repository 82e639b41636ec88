"""Independent check of an answer set: re-ground the program with the answer set enforced.

The program is ground afresh in a clingo worker (``solvers.clingo_backend.run_worker``), trusting
neither the first run nor the model. Every symbol the program shows (``#show`` or, without it, every
atom) is assumed shown exactly when the answer set claims it; the result is checked for an answer
set, and when the program optimizes, its best cost with the claim enforced is compared with the
claimed cost. When no answer set agrees with the claim, an unsatisfiable core over the enforced
symbols and the program's integrity constraints says which constraints the claim breaks or which
symbols it gets wrong.
"""

from __future__ import annotations

from typing import Any

from formalizers.asp.program import AspProgram
from solvers.base import Limits, SolveResult, Status, Verification, Violation
from solvers.clingo_backend import (
    DEFAULT_MEMORY_BYTES,
    constraint_member,
    program_text,
    run_worker,
)


def _cost_gap(found: tuple[int, ...], claimed: tuple[int, ...]) -> float:
    """Absolute difference at the highest priority level where two costs differ (0 if equal)."""
    for a, b in zip(found, claimed, strict=False):
        if a != b:
            return float(abs(a - b))
    return 0.0 if len(found) == len(claimed) else 1.0


def _core_violations(program: str, found: dict[str, Any] | None) -> list[Violation]:
    if found is None:
        return [
            Violation(
                "answer set",
                1.0,
                "no answer set of the program shows exactly these atoms",
            )
        ]
    out = []
    for m in found.get("members", []):
        if "guard" in m:
            member = constraint_member(program, m)
            desc = f" ({member['description']})" if member["description"] else ""
            out.append(Violation(member["name"], 1.0, f"violated: `{member['text']}`{desc}"))
        elif m.get("present"):
            out.append(
                Violation(
                    m["claim"],
                    1.0,
                    "the answer set includes it, which conflicts with the rest of the answer set "
                    "under the program's rules",
                )
            )
        else:
            out.append(
                Violation(
                    m["claim"],
                    1.0,
                    "the answer set leaves it out, which conflicts with the rest of the answer set "
                    "under the program's rules",
                )
            )
    return out or [
        Violation("answer set", 1.0, "no answer set of the program shows exactly these atoms")
    ]


def verify_asp(
    program: str | AspProgram,
    result: SolveResult,
    limits: Limits | None = None,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
) -> Verification:
    """Check ``result.answer_set`` (and ``result.cost``) against ``program``.

    ``ok`` when some answer set of the program shows exactly the claimed symbols and, when the
    program optimizes, its best cost with the claim enforced equals the claimed cost (for a result
    not proven optimal, is no worse than it). ``checked`` counts the shown symbols enforced plus the
    cost levels compared; ``objective`` is the recomputed cost at the highest priority (None without
    optimization). Raises ``ValueError`` when ``result`` has no answer set.
    """
    if result.answer_set is None:
        raise ValueError("there is no answer set to verify")
    limits = limits or Limits()
    text = program_text(program)
    run = run_worker(
        {"mode": "verify", "program": text, "claim": list(result.answer_set)},
        limits.time_s,
        memory_bytes,
    )
    found = run.first("result")
    if found is None or found.get("outcome") in ("timeout", "memory", "crash", "invalid"):
        why = (found or {}).get("outcome") or ("timeout" if run.killed else "crash")
        detail = (found or {}).get("detail", "")
        return Verification(
            False,
            0,
            0.0,
            None,
            message=(
                f"the check did not finish within {limits.time_s:g} s"
                if why == "timeout"
                else f"the check could not run ({why}{': ' + detail if detail else ''})"
            ),
            conclusive=False,
        )
    violations = [
        Violation(s, 1.0, "the program can never show this symbol") for s in found["never_shown"]
    ]
    violations += [Violation(s, 1.0, "not a clingo term") for s in found.get("unreadable", [])]
    checked = int(found.get("checked", 0))
    recomputed: tuple[int, ...] | None = None
    if found["outcome"] == "unsat":
        # The worker names the conflicting claims first, then (time permitting) the constraints.
        diagnoses = [e for e in run.events if e.get("event") == "diagnosis"]
        violations += _core_violations(text, diagnoses[-1] if diagnoses else None)
    else:
        recomputed = tuple(int(c) for c in found.get("cost") or ()) or None
        claimed = result.cost
        checked += len(claimed or recomputed or ())
        if (claimed or None) != recomputed:
            proven = bool(found.get("proven"))
            no_worse = (
                claimed is not None
                and recomputed is not None
                and proven
                and recomputed < claimed
                and result.status is not Status.OPTIMAL
            )
            if not no_worse:
                violations.append(
                    Violation(
                        "cost",
                        _cost_gap(recomputed or (), claimed or ()),
                        f"claimed cost {list(claimed) if claimed else 'none'}, but with this answer "
                        f"set the program's best cost is {list(recomputed) if recomputed else 'none'}"
                        + ("" if proven else " (the check ran out of time)"),
                    )
                )
    ok = not violations
    return Verification(
        ok,
        checked,
        max((v.amount for v in violations), default=0.0),
        float(recomputed[0]) if recomputed else None,
        tuple(violations),
        message=(
            "ground again with exactly these shown atoms enforced, the program has an answer "
            f"set{' with the same cost' if recomputed else ''} ({checked} checks)"
            if ok
            else f"the answer set is not confirmed: {violations[0].name}: {violations[0].detail}"
        ),
    )
