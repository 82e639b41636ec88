"""Plan validation by simulation: apply each action to the state and check its precondition and the goal.

Independent of the planner (it reads the files with ``formalizers.pddl.model``); used where
unified-planning cannot read the files, and to check a plan against a second (gold) problem.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from formalizers.pddl.model import Domain, Problem, Types
from formalizers.pddl.sexpr import Atom, SExpr, SList, render

Fact = tuple[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class PlanCheck:
    """``ok`` when every step's precondition held and the goal holds at the end; otherwise
    ``step`` (1-based, 0 for the goal) and ``reason`` say what failed. ``cost`` is the plan's
    total cost (action costs where the domain has them, else its length)."""

    ok: bool
    step: int
    reason: str
    cost: float


class _Sim:
    def __init__(self, dom: Domain, prob: Problem) -> None:
        self.dom = dom
        self.prob = prob
        self.objects: dict[str, Types] = {**dom.constants, **prob.objects}
        self.state: set[Fact] = set(prob.init)
        self.fluents: dict[tuple[str, tuple[str, ...]], float] = dict(prob.numeric_init)

    def of_type(self, types: Types) -> list[str]:
        return [o for o, t in self.objects.items() if self.dom.compatible(t, types)]

    def ground(self, term: SExpr, env: dict[str, str]) -> str:
        assert isinstance(term, Atom)
        return env.get(term.text, term.text)

    def holds(self, f: SExpr, env: dict[str, str]) -> bool:
        if not isinstance(f, SList) or not f.items:
            return True
        head = f.head()
        args = f.items[1:]
        if head == "and":
            return all(self.holds(g, env) for g in args)
        if head == "or":
            return any(self.holds(g, env) for g in args)
        if head == "not":
            return not self.holds(args[0], env)
        if head == "imply":
            return (not self.holds(args[0], env)) or self.holds(args[1], env)
        if head in ("forall", "exists"):
            assert isinstance(args[0], SList)
            combos = self._bindings(args[0], env)
            test = all if head == "forall" else any
            return test(self.holds(args[1], e) for e in combos)
        if head == "=":
            return self.ground(args[0], env) == self.ground(args[1], env)
        return (head, tuple(self.ground(a, env) for a in args)) in self.state

    def _bindings(self, params: SList, env: dict[str, str]) -> Iterable[dict[str, str]]:
        from formalizers.pddl.model import _typed_list

        typed = _typed_list(params.items, "quantifier", [])
        domains = [self.of_type(t) for _, t in typed]
        for combo in itertools.product(*domains):
            e = dict(env)
            e.update({v.text: o for (v, _), o in zip(typed, combo, strict=True)})
            yield e

    def effects(
        self,
        f: SExpr,
        env: dict[str, str],
        adds: list[Fact],
        dels: list[Fact],
        incs: list[tuple[tuple[str, tuple[str, ...]], float]],
    ) -> None:
        if not isinstance(f, SList) or not f.items:
            return
        head = f.head()
        args = f.items[1:]
        if head == "and":
            for g in args:
                self.effects(g, env, adds, dels, incs)
        elif head == "not":
            a = args[0]
            assert isinstance(a, SList)
            dels.append((a.head(), tuple(self.ground(x, env) for x in a.items[1:])))
        elif head == "forall":
            assert isinstance(args[0], SList)
            for e in self._bindings(args[0], env):
                self.effects(args[1], e, adds, dels, incs)
        elif head == "when":
            if self.holds(args[0], env):
                self.effects(args[1], env, adds, dels, incs)
        elif head in ("increase", "decrease"):
            fn = args[0]
            assert isinstance(fn, SList)
            key = (fn.head(), tuple(self.ground(x, env) for x in fn.items[1:]))
            amount = self._number(args[1], env)
            incs.append((key, amount if head == "increase" else -amount))
        else:
            adds.append((head, tuple(self.ground(x, env) for x in args)))

    def _number(self, e: SExpr, env: dict[str, str]) -> float:
        if isinstance(e, Atom):
            return float(e.text)
        key = (e.head(), tuple(self.ground(x, env) for x in e.items[1:]))
        return self.fluents.get(key, 0.0)


def parse_step(step: str) -> tuple[str, list[str]]:
    """``"stack(b1, b2)"``, ``"(stack b1 b2)"`` or ``"stack b1 b2"`` -> ("stack", ["b1", "b2"])."""
    s = step.strip().lower()
    if s.startswith("(") and s.endswith(")"):
        parts = s[1:-1].split()
        return parts[0], parts[1:]
    if "(" in s and s.endswith(")"):
        name, rest = s.split("(", 1)
        return name.strip(), [a.strip() for a in rest[:-1].split(",") if a.strip()]
    parts = s.split()
    return parts[0], parts[1:]


def check_plan(dom: Domain, prob: Problem, plan: list[str]) -> PlanCheck:
    """Simulate ``plan`` (action strings) from ``prob``'s initial state."""
    sim = _Sim(dom, prob)
    uses_costs = "total-cost" in dom.functions
    cost = 0.0
    for n, step in enumerate(plan, 1):
        name, args = parse_step(step)
        action = dom.actions.get(name)
        if action is None:
            return PlanCheck(False, n, f"step {n} '{step}': no action '{name}' in the domain", cost)
        if len(args) != len(action.params):
            return PlanCheck(
                False, n, f"step {n} '{step}': {name} takes {len(action.params)} arguments", cost
            )
        env = {}
        for (var, types), obj in zip(action.params, args, strict=True):
            if obj not in sim.objects:
                return PlanCheck(False, n, f"step {n} '{step}': unknown object '{obj}'", cost)
            if not dom.compatible(sim.objects[obj], types):
                return PlanCheck(
                    False, n, f"step {n} '{step}': '{obj}' is not of type {'/'.join(types)}", cost
                )
            env[var] = obj
        if action.precondition is not None and not sim.holds(action.precondition, env):
            return PlanCheck(
                False,
                n,
                f"step {n} '{step}': precondition {render(action.precondition)} does not hold",
                cost,
            )
        adds: list[Fact] = []
        dels: list[Fact] = []
        incs: list[tuple[tuple[str, tuple[str, ...]], float]] = []
        if action.effect is not None:
            sim.effects(action.effect, env, adds, dels, incs)
        sim.state.difference_update(dels)
        sim.state.update(adds)
        for key, amount in incs:
            sim.fluents[key] = sim.fluents.get(key, 0.0) + amount
        if not uses_costs:
            cost += 1
    if uses_costs:
        cost = sim.fluents.get(("total-cost", ()), 0.0)
    if prob.goal is not None and not sim.holds(prob.goal, {}):
        return PlanCheck(False, 0, "the goal does not hold after the last step", cost)
    return PlanCheck(True, len(plan), "", cost)
