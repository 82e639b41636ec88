"""Plan validation by simulation: the validator of every plan formalist returns.

Each step is applied to the state in turn: its action must exist, its arguments must be objects of the
parameters' types, its precondition must hold; then its effects (conditional and universal ones
included) are computed in the state before the step and applied, deletions first, so that an atom both
added and deleted ends up true. Derived predicates are recomputed after every step from their
``:derived`` rules, stratum by stratum, as least fixpoints. At the end the goal must hold.

Costs follow PDDL's action-costs rules as the planners read them: under ``(:metric minimize
(total-cost))`` a plan costs the sum of its steps' ``(increase (total-cost) ...)`` amounts (a step
without one costs 0); without that metric every step costs 1 (the plan's length), as Fast Downward
counts. A cost read from a function the problem leaves undefined (``(road-length a b)`` with no
``(= (road-length a b) N)`` in ``:init``) makes the step inapplicable: PDDL 2.1 leaves the effect of
an undefined value undefined, VAL rejects such plans, and Fast Downward never grounds such an action
(IPC 2008's elevators and transport define these functions only where a lift or a road goes); a
``(total-cost)`` the problem does not initialise starts at 0, as the planners take it.

The simulator reads the files with ``formalizers.pddl.model`` and shares no code with any planner,
so it checks the planner's plan and the cost it reported independently. It never raises on a plan:
what it cannot apply is a failed ``PlanCheck``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from formalizers.pddl.model import Axiom, Domain, Problem, Types, _typed_list, is_total_cost_metric
from formalizers.pddl.sexpr import Atom, SExpr, SList, render

Fact = tuple[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class PlanCheck:
    """``ok`` when every step's precondition held and the goal holds at the end; otherwise
    ``step`` (1-based, 0 for the goal) and ``reason`` say what failed. ``cost`` is the cost of the
    steps applied (action costs under a total-cost metric, else the number of steps); ``unit`` says
    which (True: steps counted)."""

    ok: bool
    step: int
    reason: str
    cost: float
    unit: bool = True


class _Undefined(Exception):
    """A numeric function value the problem does not define was read."""

    def __init__(self, term: str) -> None:
        super().__init__(term)
        self.term = term


class _Sim:
    def __init__(self, dom: Domain, prob: Problem) -> None:
        self.dom = dom
        self.prob = prob
        self.objects: dict[str, Types] = {**dom.constants, **prob.objects}
        self.state: set[Fact] = set(prob.init)
        self.fluents: dict[tuple[str, tuple[str, ...]], float] = dict(prob.numeric_init)
        self._typed: dict[Types, list[str]] = {}
        self._params: dict[int, list[tuple[str, Types]]] = {}
        self._conditions: dict[int, Callable[[dict[str, str]], bool]] = {}
        """Quantified variables by the id of their list (the domain's lists live as long as this)."""
        self.derived: frozenset[str] = frozenset(dom.derived)
        self.by_stratum: list[list[Axiom]] = [
            [ax for ax in dom.axioms if ax.name in set(stratum)] for stratum in dom.strata
        ]
        self.reads: frozenset[str] = frozenset(
            name for ax in dom.axioms for name in _predicates(ax.body)
        )
        """The predicates the derived predicates' rules read: a step that changes none of them
        leaves the derived facts as they are."""
        self.derive()

    def of_type(self, types: Types) -> list[str]:
        found = self._typed.get(types)
        if found is None:
            found = [o for o, t in self.objects.items() if self.dom.compatible(t, types)]
            self._typed[types] = found
        return found

    def ground(self, term: SExpr, env: dict[str, str]) -> str:
        if not isinstance(term, Atom):
            raise ValueError(f"{render(term)[:40]} is not an object or a variable")
        return env.get(term.text, term.text)

    def holds(self, f: SExpr, env: dict[str, str]) -> bool:
        """Whether ``f`` holds in the current state under ``env`` (variable -> object)."""
        return self._condition(f)(env)

    def _condition(self, f: SExpr) -> Callable[[dict[str, str]], bool]:
        """``f`` as a test of a binding against the current state, built once per formula (the
        formulas live in the domain and problem for as long as this simulator)."""
        test = self._conditions.get(id(f))
        if test is None:
            test = self._build(f)
            self._conditions[id(f)] = test
        return test

    def _build(self, f: SExpr) -> Callable[[dict[str, str]], bool]:
        if not isinstance(f, SList) or not f.items:
            return lambda env: True
        head = f.head()
        args = f.items[1:]
        if head in ("and", "or"):
            parts = [self._condition(g) for g in args]
            if head == "and":
                return lambda env: all(part(env) for part in parts)
            return lambda env: any(part(env) for part in parts)
        if head == "not":
            inner = self._condition(args[0])
            return lambda env: not inner(env)
        if head == "imply":
            if_, then = self._condition(args[0]), self._condition(args[1])
            return lambda env: (not if_(env)) or then(env)
        if head in ("forall", "exists"):
            if not isinstance(args[0], SList) or len(args) != 2:
                raise ValueError(f"malformed {head}: {render(f)[:60]}")
            params, body = args[0], self._condition(args[1])
            if head == "forall":
                return lambda env: all(body(e) for e in self._bindings(params, env))
            return lambda env: any(body(e) for e in self._bindings(params, env))
        terms = [self._name(a) for a in args]
        if head == "=":
            if len(terms) != 2:
                raise ValueError(f"malformed equality: {render(f)[:60]}")
            a, b = terms
            return lambda env: env.get(a, a) == env.get(b, b)
        if not any(t.startswith("?") for t in terms):
            fact = (head, tuple(terms))
            return lambda env: fact in self.state
        return lambda env: (head, tuple([env.get(t, t) for t in terms])) in self.state

    @staticmethod
    def _name(term: SExpr) -> str:
        if not isinstance(term, Atom):
            raise ValueError(f"{render(term)[:40]} is not an object or a variable")
        return term.text

    def _bindings(self, params: SList, env: dict[str, str]) -> Iterable[dict[str, str]]:
        typed = self._params.get(id(params))
        if typed is None:
            typed = [(v.text, t) for v, t in _typed_list(params.items, "quantifier", [])]
            self._params[id(params)] = typed
        return self._combos(typed, env)

    def _combos(
        self, typed: list[tuple[str, Types]], env: dict[str, str]
    ) -> Iterable[dict[str, str]]:
        """Every binding of the ``typed`` variables over the objects, on top of ``env``. One
        dictionary is updated in place and yielded each time: use it before asking for the next."""
        names = [v for v, _ in typed]
        e = dict(env)
        for combo in itertools.product(*(self.of_type(t) for _, t in typed)):
            e.update(zip(names, combo, strict=True))
            yield e

    def derive(self) -> None:
        """Replace the derived facts of the state by those its basic facts imply."""
        if not self.derived:
            return
        self.state = {f for f in self.state if f[0] not in self.derived}
        for axioms in self.by_stratum:
            # Within a stratum every rule reads its own stratum positively: iterate to the fixpoint.
            changed = True
            while changed:
                changed = False
                for ax in axioms:
                    for env in self._combos(ax.params, {}):
                        fact = (ax.name, tuple(env[v] for v, _ in ax.params))
                        if fact not in self.state and self.holds(ax.body, env):
                            self.state.add(fact)
                            changed = True

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
        value = self.fluents.get(key)
        if value is None:
            raise _Undefined(f"({' '.join((key[0], *key[1]))})")
        return value


def _predicates(f: SExpr) -> set[str]:
    """Every predicate ``f`` mentions."""
    if not isinstance(f, SList) or not f.items:
        return set()
    head = f.head()
    if head in ("and", "or", "not", "imply"):
        return set().union(*(_predicates(g) for g in f.items[1:]))
    if head in ("forall", "exists"):
        return _predicates(f.items[2]) if len(f.items) == 3 else set()
    return {head}


def parse_step(step: str) -> tuple[str, list[str]]:
    """``"stack(b1, b2)"``, ``"(stack b1 b2)"`` or ``"stack b1 b2"`` -> ("stack", ["b1", "b2"])."""
    s = step.strip().lower()
    if s.startswith("(") and s.endswith(")"):
        parts = s[1:-1].split()
        return (parts[0], parts[1:]) if parts else ("", [])
    if "(" in s and s.endswith(")"):
        name, rest = s.split("(", 1)
        return name.strip(), [a.strip() for a in rest[:-1].split(",") if a.strip()]
    parts = s.split()
    return (parts[0], parts[1:]) if parts else ("", [])


def check_plan(dom: Domain, prob: Problem, plan: list[str]) -> PlanCheck:
    """Simulate ``plan`` (action strings) from ``prob``'s initial state; see the module docstring
    for the semantics, costs included."""
    unit = not (isinstance(prob.metric, SList) and is_total_cost_metric(prob.metric))
    cost = 0.0
    try:
        sim = _Sim(dom, prob)
    except (ValueError, AssertionError, IndexError, RecursionError) as e:
        return PlanCheck(False, 0, f"the initial state could not be computed: {e}", cost, unit)
    for n, step in enumerate(plan, 1):
        name, args = parse_step(step)
        action = dom.actions.get(name)
        if action is None:
            return PlanCheck(
                False, n, f"step {n} '{step}': no action '{name}' in the domain", cost, unit
            )
        if len(args) != len(action.params):
            return PlanCheck(
                False,
                n,
                f"step {n} '{step}': {name} takes {len(action.params)} arguments",
                cost,
                unit,
            )
        env = {}
        for (var, types), obj in zip(action.params, args, strict=True):
            if obj not in sim.objects:
                return PlanCheck(False, n, f"step {n} '{step}': unknown object '{obj}'", cost, unit)
            if not dom.compatible(sim.objects[obj], types):
                return PlanCheck(
                    False,
                    n,
                    f"step {n} '{step}': '{obj}' is not of type {'/'.join(types)}",
                    cost,
                    unit,
                )
            env[var] = obj
        adds: list[Fact] = []
        dels: list[Fact] = []
        incs: list[tuple[tuple[str, tuple[str, ...]], float]] = []
        try:
            if action.precondition is not None and not sim.holds(action.precondition, env):
                return PlanCheck(
                    False,
                    n,
                    f"step {n} '{step}': precondition {render(action.precondition)} does not hold",
                    cost,
                    unit,
                )
            if action.effect is not None:
                sim.effects(action.effect, env, adds, dels, incs)
        except _Undefined as e:
            return PlanCheck(
                False,
                n,
                f"step {n} '{step}': its cost {e.term} has no value in the problem's :init; an "
                "effect that reads an undefined function value cannot be applied (PDDL 2.1)",
                cost,
                unit,
            )
        except (ValueError, AssertionError, IndexError, RecursionError) as e:
            return PlanCheck(False, n, f"step {n} '{step}' could not be applied: {e}", cost, unit)
        sim.state.difference_update(dels)
        sim.state.update(adds)
        for key, amount in incs:
            sim.fluents[key] = sim.fluents.get(key, 0.0) + amount
        step_cost = sum(amount for key, amount in incs if key == ("total-cost", ()))
        cost += 1.0 if unit else step_cost
        try:
            if any(f[0] in sim.reads for f in itertools.chain(adds, dels)):
                sim.derive()
        except (ValueError, AssertionError, IndexError, RecursionError) as e:
            return PlanCheck(
                False, n, f"step {n} '{step}': derived predicates failed: {e}", cost, unit
            )
    try:
        reached = prob.goal is None or sim.holds(prob.goal, {})
    except (ValueError, AssertionError, IndexError, RecursionError) as e:
        return PlanCheck(False, 0, f"the goal could not be evaluated: {e}", cost, unit)
    if not reached:
        return PlanCheck(False, 0, "the goal does not hold after the last step", cost, unit)
    return PlanCheck(True, len(plan), "", cost, unit)
