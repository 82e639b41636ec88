"""Scoring one answer against its label, under every rule that applies.

Objective values (``../shared/data/README.md``), both rules reported for every run:

- ``strict``: ``|pred - gold| / (|gold| + 1) < 1e-6`` (SIRL, OptiMind);
- ``lenient``: round both to integers, then ``|pred - gold| / |gold| <= 0.05`` (ORLM, OptMATH code);
  a gold that rounds to 0 needs a prediction that rounds to 0.

A gold of "No Best Solution" (-99999 / -9999) expects an INFEASIBLE or UNBOUNDED status: both rules
count that status as right and any number as wrong. Plans are scored ``valid`` (a plan that the
validator accepts against the gold problem). Routes are scored as Words to Routes does: ``feasible``
(the verifier accepts the route), ``optimal`` (``round(best / obj, 2) == 1``), and ``efficiency``
(``round(best / obj, 2)``, 0 when infeasible).
"""

from __future__ import annotations

from typing import Any

OBJECTIVE_RULES = ("strict", "lenient")
PLAN_RULES = ("valid",)
ROUTE_RULES = ("feasible", "optimal")
NO_SOLUTION_STATUSES = frozenset({"INFEASIBLE", "UNBOUNDED"})
SOLUTION_STATUSES = frozenset({"OPTIMAL", "FEASIBLE"})


def strict(pred: float, gold: float) -> bool:
    return abs(pred - gold) / (abs(gold) + 1) < 1e-6


def lenient(pred: float, gold: float) -> bool:
    p, g = round(pred), round(gold)
    if g == 0:
        return p == 0
    return abs(p - g) / abs(g) <= 0.05


def rules_for(expect: str) -> tuple[str, ...]:
    if expect == "plan":
        return PLAN_RULES
    if expect == "route":
        return ROUTE_RULES
    return OBJECTIVE_RULES


def score(
    expect: str,
    gold: float | None,
    status: str,
    objective: float | None,
    verified: bool,
    plan_valid: bool = False,
) -> dict[str, bool | None]:
    """Whether the answer is right under each rule; ``None`` when the item has no label."""
    rules = rules_for(expect)
    if expect == "unlabelled":
        return dict.fromkeys(rules, None)
    if expect == "plan":
        return {"valid": plan_valid}
    if expect == "route":
        feasible = status in SOLUTION_STATUSES and verified and objective is not None
        optimal = bool(
            feasible and gold is not None and objective and round(gold / objective, 2) == 1.0
        )
        return {"feasible": feasible, "optimal": optimal}
    if expect == "infeasible":
        ok = status in NO_SOLUTION_STATUSES
        return dict.fromkeys(rules, ok)
    if gold is None or objective is None or status not in SOLUTION_STATUSES:
        return dict.fromkeys(rules, False)
    return {"strict": strict(objective, gold), "lenient": lenient(objective, gold)}


def efficiency(expect: str, gold: float | None, objective: float | None, feasible: bool) -> float:
    """Words to Routes' efficiency ``round(best / obj, 2)``; 0 when infeasible or unlabelled."""
    if expect != "route" or not feasible or not gold or not objective:
        return 0.0
    return round(gold / objective, 2)


PARSE_OUTCOMES = frozenset(
    {
        "parse",
        "schema",
        "symbol",
        "nonlinear",
        "syntax",
        "size",
        "index",
        "ground",
        "reply",
        "pddl",
        "cut_off",
    }
)
"""Outcomes of a reply that gave no usable artifact: the model's side (``parse``), never the
solver's. ``cut_off`` is a reply stopped by its token budget (2048 tokens of an indexed model
that never closed were classed ``solver``)."""


def error_class(row: dict[str, Any]) -> str:
    """One of ``ok``, ``parse``, ``solver``, ``verification``, ``timeout``, ``wrong answer``,
    ``unsupported`` (the pipeline cannot take the item), ``unlabelled``.

    ``row`` is a results line: ``scores``, ``status``, ``verified``, ``outcome`` (the last attempt's
    outcome), ``error`` and ``timed_out``.
    """
    scores = row.get("scores") or {}
    first = next(iter(scores.values()), None) if scores else None
    if row.get("timed_out") or row.get("status") == "TIMEOUT":
        return "timeout" if not first else "ok"
    if row.get("status") == "UNSUPPORTED":
        return "unsupported"
    if first is None and row.get("expect") == "unlabelled":
        return "unlabelled"
    if first:
        return "ok"
    outcome = row.get("outcome") or ""
    if outcome in PARSE_OUTCOMES:
        return "parse"
    if outcome in ("verification", "plan") or (
        row.get("status") in SOLUTION_STATUSES and row.get("verified") is False
    ):
        return "verification"
    if row.get("status") == "ERROR" or row.get("error"):
        return "solver" if outcome not in PARSE_OUTCOMES else "parse"
    return "wrong answer"


def vote_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """For a run that sampled and voted (rows with ``sample_scores``), per rule: ``vote`` (the
    voted answer right), ``pass@1`` (a single sample right: the mean over the samples of each
    item, then over items; where each item's first sample was greedy, also ``pass@1_greedy``, that
    sample alone, and ``pass@1_sampled``, the others), ``pass@k`` (any sample right); and how
    often the verified samples
    disagreed, with the mean confidence of right and of wrong votes (under the first rule).
    ``None`` when no row voted."""
    voted = [r for r in rows if r.get("sample_scores")]
    if not voted:
        return None
    rules = [k for k in (voted[0].get("scores") or {}) if k in OBJECTIVE_RULES + ROUTE_RULES]
    out: dict[str, Any] = {"items": len(voted), "rules": {}}
    # Runs whose first sample is greedy (``agent.voting.GREEDY``) also give pass@1 of the greedy
    # reply (what one call gives) apart from that of the samples at the temperature.
    greedy = all(r["vote"].get("greedy", 0) >= 1 for r in voted)
    for rule in rules:
        per_item = [[bool(s.get(rule)) for s in r["sample_scores"]] for r in voted]
        row = {
            "vote": round(sum(bool(r["scores"].get(rule)) for r in voted) / len(voted), 4),
            "pass@1": round(sum(sum(x) / len(x) for x in per_item if x) / len(voted), 4),
            "pass@k": round(sum(any(x) for x in per_item) / len(voted), 4),
        }
        if greedy:
            warm = [x[1:] for x in per_item if len(x) > 1]
            row["pass@1_greedy"] = round(sum(x[0] for x in per_item if x) / len(voted), 4)
            if warm:
                row["pass@1_sampled"] = round(sum(sum(x) / len(x) for x in warm) / len(warm), 4)
        out["rules"][rule] = row
    first = rules[0] if rules else ""
    right = [r["vote"]["confidence"] for r in voted if first and r["scores"].get(first)]
    wrong = [r["vote"]["confidence"] for r in voted if first and not r["scores"].get(first)]
    out["disagree"] = sum(bool(r["vote"].get("disagree")) for r in voted)
    out["mean_confidence_right"] = round(sum(right) / len(right), 4) if right else None
    out["mean_confidence_wrong"] = round(sum(wrong) / len(wrong), 4) if wrong else None
    return out


def grounding_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """For rows with a grounding check (``grounded``), how it sorts the answers under the first
    scoring rule: ``right`` and ``wrong`` answers, each split into grounded and not (a check that
    says "not grounded" mostly of wrong answers is a useful warning). ``None`` when no row has it."""
    checked = [r for r in rows if isinstance(r.get("grounded"), bool)]
    if not checked:
        return None
    out: dict[str, Any] = {"checked": len(checked), "grounded": sum(r["grounded"] for r in checked)}
    for name, want in (("right", True), ("wrong", False)):
        part = [
            r for r in checked if bool(next(iter((r.get("scores") or {}).values()), False)) == want
        ]
        out[name] = {
            "grounded": sum(r["grounded"] for r in part),
            "not_grounded": sum(not r["grounded"] for r in part),
        }
    return out
