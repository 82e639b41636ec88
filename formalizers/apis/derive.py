"""What is known and what is missing, derived by clingo from the request's facts and the API graph."""

from __future__ import annotations

from dataclasses import dataclass

from formalizers.apis.model import ApiRequest

RULES = """
% A needed parameter is given, asked for, or made by exactly one chosen API call.
needed(P) :- want(P).
{ use(A) : output(A, P) } = 1 :- needed(P), not given(P), produced(P).
needed(P) :- use(A), input(A, P).
ask(P) :- needed(P), not given(P), not produced(P).
% Only what is well-founded is reached: no API output supports itself through a cycle.
reach(P) :- given(P).
reach(P) :- ask(P).
reach(P) :- use(A), output(A, P), reach(Q) : input(A, Q).
:- needed(P), not reach(P).
#minimize { C, A : use(A), cost(A, C) ; K, P : ask(P), ask_cost(K) }.
#show use/1.
#show ask/1.
"""


@dataclass(frozen=True, slots=True)
class Derivation:
    """``calls``: the APIs to call; ``missing``: what only the person can give; ``cost``: their total
    cost (asks included); ``satisfiable`` is False when nothing can produce some wanted parameter."""

    calls: tuple[str, ...]
    missing: tuple[str, ...]
    cost: int
    satisfiable: bool


def facts(req: ApiRequest) -> str:
    """The request and the catalog as ASP facts (names are validated identifiers, so no quoting)."""
    lines = [f"ask_cost({req.catalog.ask_cost})."]
    for a in req.catalog.apis:
        lines.append(f"api({a.name}). cost({a.name}, {a.cost}).")
        lines += [f"input({a.name}, {p})." for p in a.inputs]
        lines += [f"output({a.name}, {p}). produced({p})." for p in a.outputs]
    lines += [f"given({p})." for p in req.given]
    lines += [f"want({p})." for p in req.want]
    return "\n".join(lines)


def derive(req: ApiRequest, time_s: float = 10.0) -> Derivation:
    """Solve the rules over the request's facts with clingo (optimal: fewest asks, then cheapest calls).

    The program is ours and its facts are validated identifiers, so it grounds in time linear in the
    catalog; it runs in this process with clingo's own time limit on the search.
    """
    import clingo

    ctl = clingo.Control(["--opt-mode=opt", "--warn=none"])
    ctl.add("base", [], RULES + "\n" + facts(req))
    ctl.ground([("base", [])])
    best: list[clingo.Symbol] = []
    cost: list[int] = []

    def on_model(m: clingo.Model) -> None:
        best[:] = m.symbols(shown=True)
        cost[:] = m.cost

    with ctl.solve(on_model=on_model, async_=True) as handle:
        if not handle.wait(time_s):
            handle.cancel()
        result = handle.get()
    if not result.satisfiable:
        return Derivation((), (), 0, False)
    calls = tuple(sorted(str(s.arguments[0]) for s in best if s.name == "use"))
    missing = tuple(sorted(str(s.arguments[0]) for s in best if s.name == "ask"))
    return Derivation(calls, missing, sum(cost), True)
