"""PDDL domains and problems as data, with located checks.

This reader covers the PDDL that the bundled classical planners (Fast Downward, SymK) take: STRIPS,
typing with ``either``, negative and disjunctive conditions, equality, quantifiers, conditional and
universal effects, derived predicates (``:derived``, stratified) and action costs (``(increase
(total-cost) N)`` with N a non-negative integer or a function the problem fixes, under ``(:metric
minimize (total-cost))``). It exists to say precisely what is wrong with a model-written file, where,
and how to fix it (undeclared predicate, object or type, wrong arity, type mismatch, unbalanced
parentheses), to refuse by name what the planners do not take (numeric fluents beyond action costs,
durative actions, preferences and constraints, timed initial literals, object fluents: an
``ArtifactError`` of kind ``unsupported``), and to give the plan validator
(``formalizers.pddl.simulate``) the files as data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.errors import ArtifactError, Diagnostic
from formalizers.pddl.sexpr import Atom, SExpr, SList, parse_sexprs, render

Types = tuple[str, ...]
"""The types a parameter or object may have (more than one for ``either``)."""


@dataclass(slots=True)
class Action:
    name: str
    params: list[tuple[str, Types]]
    precondition: SExpr | None
    effect: SExpr | None
    where: str = ""


@dataclass(slots=True)
class Axiom:
    """One rule of a derived predicate: ``(:derived (name ?x - t ...) body)``; the predicate holds
    for the arguments that satisfy ``body`` in some rule (the least fixpoint, stratum by stratum)."""

    name: str
    params: list[tuple[str, Types]]
    body: SExpr
    where: str = ""


@dataclass(slots=True)
class Domain:
    name: str
    requirements: list[str] = field(default_factory=list)
    parents: dict[str, list[str]] = field(default_factory=dict)
    """Each declared type and its direct super-types (``object`` is implicit)."""
    constants: dict[str, Types] = field(default_factory=dict)
    predicates: dict[str, list[Types]] = field(default_factory=dict)
    functions: dict[str, int] = field(default_factory=dict)
    """Each declared numeric function and its arity."""
    actions: dict[str, Action] = field(default_factory=dict)
    axioms: list[Axiom] = field(default_factory=list)
    strata: list[list[str]] = field(default_factory=list)
    """The derived predicates in evaluation order: a stratum's rules read only the predicates of its
    own and earlier strata, and negate only those of earlier ones."""
    text: str = ""

    @property
    def derived(self) -> set[str]:
        """The names of the derived predicates."""
        return {a.name for a in self.axioms}

    def ancestors(self, t: str) -> set[str]:
        out, todo = {t, "object"}, [t]
        while todo:
            for p in self.parents.get(todo.pop(), []):
                if p not in out:
                    out.add(p)
                    todo.append(p)
        return out

    def compatible(self, have: Types, want: Types) -> bool:
        """Whether an object of type ``have`` may fill a slot of type ``want``."""
        return any(set(want) & self.ancestors(h) for h in have)


@dataclass(slots=True)
class Problem:
    name: str
    domain_name: str
    objects: dict[str, Types] = field(default_factory=dict)
    init: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    numeric_init: dict[tuple[str, tuple[str, ...]], float] = field(default_factory=dict)
    goal: SExpr | None = None
    metric: SExpr | None = None
    text: str = ""


def _err(where: str, message: str, hint: str = "") -> Diagnostic:
    return Diagnostic(where, message, hint)


@dataclass(frozen=True, slots=True)
class Unsupported(Diagnostic):
    """A finding that the file uses a PDDL feature the planners here do not take."""


PLANNERS_TAKE = (
    "Fast Downward and SymK plan with STRIPS and ADL (types, negative and disjunctive conditions, "
    "quantifiers, conditional effects), derived predicates and action costs"
)

NUMERIC_HINT = (
    "numbers are taken only as action costs: (increase (total-cost) N) with N a non-negative "
    "integer or a function the problem fixes in :init; model quantities as objects (levels "
    "l0 l1 l2 with (next ?a ?b) facts) instead"
)


def _unsupported(where: str, what: str, hint: str = NUMERIC_HINT) -> Unsupported:
    return Unsupported(where, f"{what}, which the planners here do not support", hint)


def _integer_value(text: str) -> int | None:
    """``text`` as a non-negative integer written in digits (``"12"``), else None: Fast Downward's
    reader refuses signs, fractions and exponents in numbers."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def _raise(diags: list[Diagnostic], what: str) -> None:
    """Raise the findings: ``unsupported`` when any finding is a feature the planners lack (the
    other findings still listed), else ``symbol`` or ``parse``."""
    if not diags:
        return
    beyond = [d for d in diags if isinstance(d, Unsupported)]
    if beyond:
        raise ArtifactError(
            "unsupported",
            beyond + [d for d in diags if not isinstance(d, Unsupported)],
            f"the {what} uses PDDL that the planners here do not support "
            f"({'; '.join(d.message.split(', which')[0] for d in beyond[:3])}); {PLANNERS_TAKE}",
        )
    raise ArtifactError(
        "symbol" if all("line" in d.location for d in diags) else "parse",
        diags,
        f"the {what} has {len(diags)} problem(s) to fix",
    )


def _typed_list(items: list[SExpr], what: str, diags: list[Diagnostic]) -> list[tuple[Atom, Types]]:
    """``a b - t c - (either u v) d`` -> [(a, (t,)), (b, (t,)), (c, (u, v)), (d, ("object",))]."""
    out: list[tuple[Atom, Types]] = []
    pending: list[Atom] = []
    i = 0
    while i < len(items):
        it = items[i]
        if isinstance(it, Atom) and it.text == "-":
            if i + 1 >= len(items):
                diags.append(_err(it.where, f"'-' at the end of the {what} with no type after it"))
                break
            t = items[i + 1]
            if isinstance(t, SList) and t.head() == "either":
                types = tuple(a.text for a in t.items[1:] if isinstance(a, Atom))
            elif isinstance(t, Atom):
                types = (t.text,)
            else:
                diags.append(_err(t.where, f"expected a type after '-' in the {what}"))
                types = ("object",)
            out.extend((p, types) for p in pending)
            pending = []
            i += 2
            continue
        if isinstance(it, Atom):
            pending.append(it)
        else:
            diags.append(_err(it.where, f"unexpected list {render(it)[:40]} in the {what}"))
        i += 1
    out.extend((p, ("object",)) for p in pending)
    return out


def _sections(top: SExpr, kind: str, diags: list[Diagnostic]) -> tuple[str, list[SList]]:
    if not isinstance(top, SList) or top.head() != "define":
        where = top.where
        diags.append(_err(where, f"a {kind} file must be one (define ({kind} NAME) ...) form"))
        return "", []
    header = top.items[1] if len(top.items) > 1 else None
    if not (
        isinstance(header, SList)
        and header.head() == kind
        and len(header.items) == 2
        and isinstance(header.items[1], Atom)
    ):
        diags.append(_err(top.where, f"expected ({kind} NAME) after define"))
        return "", []
    sections = []
    for s in top.items[2:]:
        if isinstance(s, SList) and s.head().startswith(":"):
            sections.append(s)
        else:
            diags.append(
                _err(s.where, f"expected a section such as (:objects ...), found {render(s)[:40]}")
            )
    name = header.items[1]
    assert isinstance(name, Atom)
    return name.text, sections


def read_domain(text: str) -> Domain:
    """Read a domain file. Raises ``ArtifactError`` with every problem found, each located."""
    diags: list[Diagnostic] = []
    tops = parse_sexprs(text, "domain")
    if len(tops) != 1:
        raise ArtifactError(
            "parse", [_err("domain", f"expected one (define (domain ...)) form, found {len(tops)}")]
        )
    name, sections = _sections(tops[0], "domain", diags)
    dom = Domain(name, text=text)
    for s in sections:
        head = s.head()
        body = s.items[1:]
        if head == ":requirements":
            dom.requirements = [a.text for a in body if isinstance(a, Atom)]
        elif head == ":types":
            for t, parents in _typed_list(body, "types", diags):
                dom.parents.setdefault(t.text, []).extend(p for p in parents if p != t.text)
        elif head == ":constants":
            for c, types in _typed_list(body, "constants", diags):
                dom.constants[c.text] = types
        elif head == ":predicates":
            for p in body:
                if not isinstance(p, SList) or not p.items or not isinstance(p.items[0], Atom):
                    diags.append(_err(p.where, "a predicate is declared as (name ?x - type ...)"))
                    continue
                params = _typed_list(p.items[1:], f"predicate {p.head()}", diags)
                dom.predicates[p.head()] = [types for _, types in params]
        elif head == ":functions":
            _read_functions(dom, body, diags)
        elif head == ":action":
            _read_action(dom, s, diags)
        elif head == ":derived":
            _read_axiom(dom, s, diags)
        elif head == ":durative-action":
            diags.append(_unsupported(s.where, "a durative action (temporal planning)", ""))
        elif head == ":constraints":
            diags.append(_unsupported(s.where, "state-trajectory constraints (PDDL 3)", ""))
    # A super-type used only after '-' is a type too.
    for super_type in {st for sts in dom.parents.values() for st in sts}:
        if super_type != "object":
            dom.parents.setdefault(super_type, [])
    if not diags:
        for a in dom.actions.values():
            scope = {v: types for v, types in a.params}
            if a.precondition is not None:
                _check_formula(
                    dom,
                    a.precondition,
                    scope,
                    {},
                    f"action {a.name} precondition",
                    diags,
                    effect=False,
                )
            if a.effect is not None:
                _check_formula(
                    dom, a.effect, scope, {}, f"action {a.name} effect", diags, effect=True
                )
        _check_axioms(dom, diags)
    _raise(diags, "domain")
    return dom


def _read_action(dom: Domain, s: SList, diags: list[Diagnostic]) -> None:
    if len(s.items) < 2 or not isinstance(s.items[1], Atom):
        diags.append(
            _err(s.where, "(:action NAME :parameters (...) :precondition ... :effect ...)")
        )
        return
    name = s.items[1].text
    params: list[tuple[str, Types]] = []
    pre: SExpr | None = None
    eff: SExpr | None = None
    i = 2
    while i < len(s.items):
        key = s.items[i]
        val = s.items[i + 1] if i + 1 < len(s.items) else None
        if not isinstance(key, Atom) or val is None:
            diags.append(
                _err(key.where, f"action {name}: expected :parameters, :precondition or :effect")
            )
            break
        if key.text == ":parameters":
            if isinstance(val, SList):
                params = [
                    (a.text, t) for a, t in _typed_list(val.items, f"parameters of {name}", diags)
                ]
        elif key.text == ":precondition":
            pre = val
        elif key.text == ":effect":
            eff = val
        else:
            diags.append(_err(key.where, f"action {name}: unknown keyword {key.text}"))
        i += 2
    dom.actions[name] = Action(name, params, pre, eff, s.where)


def _read_functions(dom: Domain, body: list[SExpr], diags: list[Diagnostic]) -> None:
    """``(f ?x - t) - number (total-cost) - number``: arities into ``dom.functions``; a function
    whose values are objects (``- location``) is refused by name."""
    i = 0
    while i < len(body):
        f = body[i]
        if isinstance(f, SList) and f.items and isinstance(f.items[0], Atom):
            dom.functions[f.head()] = len(_typed_list(f.items[1:], "function", diags))
            nxt = body[i + 1] if i + 1 < len(body) else None
            if isinstance(nxt, Atom) and nxt.text == "-" and i + 2 < len(body):
                kind = body[i + 2]
                if not (isinstance(kind, Atom) and kind.text == "number"):
                    diags.append(
                        _unsupported(
                            f.where,
                            f"function '{f.head()}' has values of type {render(kind)} "
                            "(object fluents, PDDL 3.1)",
                            "use a predicate with one more argument instead",
                        )
                    )
                i += 2
        elif not (isinstance(f, Atom) and f.text in ("-", "number")):
            diags.append(_err(f.where, "a function is declared as (name ?x - type ...) - number"))
        i += 1


def _read_axiom(dom: Domain, s: SList, diags: list[Diagnostic]) -> None:
    if (
        len(s.items) != 3
        or not isinstance(s.items[1], SList)
        or not s.items[1].items
        or not isinstance(s.items[1].items[0], Atom)
    ):
        diags.append(
            _err(s.where, "a derived predicate is (:derived (name ?x - type ...) FORMULA)")
        )
        return
    head = s.items[1]
    params = [(a.text, t) for a, t in _typed_list(head.items[1:], f"derived {head.head()}", diags)]
    dom.axioms.append(Axiom(head.head(), params, s.items[2], s.where))


def _check_axioms(dom: Domain, diags: list[Diagnostic]) -> None:
    """Each rule's predicate is declared with its arity, its body reads declared symbols, and the
    rules are stratified (no derived predicate depends on its own negation)."""
    for ax in dom.axioms:
        where = f"derived {ax.name} ({ax.where})"
        if ax.name not in dom.predicates:
            diags.append(
                _err(
                    ax.where,
                    f"derived predicate '{ax.name}' is not declared",
                    "declare it under :predicates too",
                )
            )
            continue
        if len(ax.params) != len(dom.predicates[ax.name]):
            diags.append(
                _err(
                    ax.where,
                    f"derived predicate '{ax.name}' takes {len(dom.predicates[ax.name])} "
                    f"argument(s), its rule has {len(ax.params)}",
                )
            )
            continue
        _check_formula(dom, ax.body, dict(ax.params), {}, where, diags, effect=False)
    if dom.axioms and not diags:
        strata = _stratify(dom)
        if strata is None:
            diags.append(
                _unsupported(
                    dom.axioms[0].where,
                    "derived predicates that depend on their own negation (not stratifiable)",
                    "no derived predicate may be defined, directly or through others, by its "
                    "own negation",
                )
            )
        else:
            dom.strata = strata


def _dependencies(f: SExpr, derived: set[str], positive: bool, out: set[tuple[str, bool]]) -> None:
    """The derived predicates ``f`` reads, each with whether it is read positively."""
    if not isinstance(f, SList) or not f.items:
        return
    head = f.head()
    args = f.items[1:]
    if head == "not":
        for g in args:
            _dependencies(g, derived, not positive, out)
    elif head == "imply" and len(args) == 2:
        _dependencies(args[0], derived, not positive, out)
        _dependencies(args[1], derived, positive, out)
    elif head in ("and", "or"):
        for g in args:
            _dependencies(g, derived, positive, out)
    elif head in ("forall", "exists") and len(args) == 2:
        _dependencies(args[1], derived, positive, out)
    elif head in derived:
        out.add((head, positive))


def _stratify(dom: Domain) -> list[list[str]] | None:
    """Strata of the derived predicates (None when some predicate depends on its own negation):
    a predicate's stratum is at least that of every predicate it reads, and above that of every
    predicate it negates."""
    derived = sorted(dom.derived)
    deps: dict[str, set[tuple[str, bool]]] = {p: set() for p in derived}
    for ax in dom.axioms:
        _dependencies(ax.body, set(derived), True, deps[ax.name])
    level = dict.fromkeys(derived, 0)
    changed = True
    while changed:
        changed = False
        for p in derived:
            for q, positive in deps[p]:
                need = level[q] if positive else level[q] + 1
                if need > level[p]:
                    if need > len(derived):
                        return None
                    level[p] = need
                    changed = True
    return [[p for p in derived if level[p] == k] for k in range(max(level.values()) + 1)]


def _term_types(
    dom: Domain,
    term: Atom,
    scope: dict[str, Types],
    objects: dict[str, Types],
    where: str,
    diags: list[Diagnostic],
) -> Types | None:
    t = term.text
    if t.startswith("?"):
        if t not in scope:
            diags.append(
                _err(
                    f"{where}, {term.where}",
                    f"variable {t} is not a parameter or quantified variable",
                    "declare it in :parameters or a forall/exists",
                )
            )
            return None
        return scope[t]
    if t in objects:
        return objects[t]
    if t in dom.constants:
        return dom.constants[t]
    diags.append(
        _err(
            f"{where}, {term.where}",
            f"object '{t}' is not declared",
            "declare it under :objects (or as a domain constant)",
        )
    )
    return None


def _check_atom(
    dom: Domain,
    lst: SList,
    scope: dict[str, Types],
    objects: dict[str, Types],
    where: str,
    diags: list[Diagnostic],
) -> None:
    pred = lst.head()
    args = lst.items[1:]
    if pred == "=":
        for a in args:
            if isinstance(a, Atom):
                _term_types(dom, a, scope, objects, where, diags)
        return
    if pred not in dom.predicates:
        if pred in dom.functions:
            return
        close = [
            p
            for p in dom.predicates
            if p.replace("-", "").replace("_", "") == pred.replace("-", "").replace("_", "")
        ]
        hint = (
            f"did you mean '{close[0]}'?"
            if close
            else f"the domain declares: {', '.join(sorted(dom.predicates))}"
        )
        diags.append(
            _err(f"{where}, {lst.where}", f"predicate '{pred}' is not declared in the domain", hint)
        )
        return
    want = dom.predicates[pred]
    if len(args) != len(want):
        diags.append(
            _err(
                f"{where}, {lst.where}",
                f"predicate '{pred}' takes {len(want)} argument(s), given {len(args)}: {render(lst)}",
            )
        )
        return
    for a, w in zip(args, want, strict=True):
        if not isinstance(a, Atom):
            diags.append(
                _err(f"{where}, {a.where}", f"argument {render(a)} of '{pred}' must be a name")
            )
            continue
        have = _term_types(dom, a, scope, objects, where, diags)
        if have is not None and not dom.compatible(have, w):
            diags.append(
                _err(
                    f"{where}, {a.where}",
                    f"'{a.text}' is of type {'/'.join(have)} but '{pred}' expects {'/'.join(w)} there",
                )
            )


_CONNECTIVES = {"and", "or", "not", "imply"}
_COMPARISONS = {"<", "<=", ">", ">="}


def _check_formula(
    dom: Domain,
    f: SExpr,
    scope: dict[str, Types],
    objects: dict[str, Types],
    where: str,
    diags: list[Diagnostic],
    effect: bool,
) -> None:
    if isinstance(f, Atom):
        diags.append(
            _err(f"{where}, {f.where}", f"expected a formula in parentheses, found '{f.text}'")
        )
        return
    if not f.items:
        return  # () is the empty conjunction
    head = f.head()
    if head in _CONNECTIVES:
        for g in f.items[1:]:
            _check_formula(dom, g, scope, objects, where, diags, effect)
    elif head in ("forall", "exists"):
        if len(f.items) != 3 or not isinstance(f.items[1], SList):
            diags.append(_err(f"{where}, {f.where}", f"({head} (?v - type) FORMULA) expected"))
            return
        inner = dict(scope)
        inner.update({v.text: t for v, t in _typed_list(f.items[1].items, head, diags)})
        _check_formula(dom, f.items[2], inner, objects, where, diags, effect)
    elif head == "when" and effect:
        for g in f.items[1:]:
            _check_formula(dom, g, scope, objects, where, diags, effect=g is f.items[2])
    elif head in _COMPARISONS or (head == "=" and any(isinstance(a, SList) for a in f.items[1:])):
        diags.append(_unsupported(f"{where}, {f.where}", f"a numeric condition {render(f)[:60]}"))
    elif head in ("assign", "scale-up", "scale-down"):
        diags.append(_unsupported(f"{where}, {f.where}", f"a numeric effect {render(f)[:60]}"))
    elif head in ("increase", "decrease"):
        _check_cost(dom, f, scope, objects, f"{where}, {f.where}", diags)
    elif head == "preference":
        diags.append(_unsupported(f"{where}, {f.where}", "a preference (PDDL 3)", ""))
    elif effect and head in dom.derived:
        diags.append(
            _err(
                f"{where}, {f.where}",
                f"'{head}' is a derived predicate: actions cannot change it",
                "it follows from the state by its :derived rule; change the facts it reads",
            )
        )
    else:
        _check_atom(dom, f, scope, objects, where, diags)


def _check_cost(
    dom: Domain,
    f: SList,
    scope: dict[str, Types],
    objects: dict[str, Types],
    where: str,
    diags: list[Diagnostic],
) -> None:
    """``(increase (total-cost) N)`` with N a non-negative integer or a declared function applied
    to parameters or constants: the action costs Fast Downward takes. Anything else is refused."""
    args = f.items[1:]
    target = args[0] if args else None
    if not (
        len(args) == 2
        and isinstance(target, SList)
        and target.head() == "total-cost"
        and len(target.items) == 1
    ):
        diags.append(_unsupported(where, f"a numeric effect {render(f)[:60]}"))
        return
    if f.head() == "decrease":
        diags.append(_unsupported(where, f"{render(f)[:60]} (action costs only increase)"))
        return
    if "total-cost" not in dom.functions:
        diags.append(
            _err(
                where,
                "function total-cost is not declared",
                "add (:functions (total-cost) - number)",
            )
        )
    amount = args[1]
    if isinstance(amount, Atom):
        if _integer_value(amount.text) is None:
            diags.append(
                _unsupported(
                    where, f"the action cost '{amount.text}' (costs are non-negative integers)"
                )
            )
        return
    name = amount.head()
    if name not in dom.functions or name == "total-cost":
        if name in dom.functions or name in ("+", "-", "*", "/"):
            diags.append(_unsupported(where, f"the action cost {render(amount)[:60]}"))
        else:
            diags.append(
                _err(
                    where,
                    f"function '{name}' is not declared",
                    f"declare it under :functions, or use one of: {', '.join(sorted(dom.functions))}",
                )
            )
        return
    terms = amount.items[1:]
    if len(terms) != dom.functions[name]:
        diags.append(
            _err(
                where,
                f"function '{name}' takes {dom.functions[name]} argument(s), given {len(terms)}",
            )
        )
        return
    for t in terms:
        if isinstance(t, Atom):
            _term_types(dom, t, scope, objects, where, diags)
        else:
            diags.append(_unsupported(where, f"the action cost {render(amount)[:60]}"))


def read_problem(text: str, dom: Domain) -> Problem:
    """Read a problem file and check it against ``dom``. Raises ``ArtifactError`` with every problem."""
    diags: list[Diagnostic] = []
    tops = parse_sexprs(text, "problem")
    if len(tops) != 1:
        raise ArtifactError(
            "parse",
            [_err("problem", f"expected one (define (problem ...)) form, found {len(tops)}")],
        )
    name, sections = _sections(tops[0], "problem", diags)
    prob = Problem(name, "", text=text)
    init_atoms: list[SList] = []
    numeric_init: list[SList] = []
    for s in sections:
        head = s.head()
        body = s.items[1:]
        if head == ":domain":
            prob.domain_name = body[0].text if body and isinstance(body[0], Atom) else ""
            if prob.domain_name and prob.domain_name != dom.name:
                diags.append(
                    _err(
                        s.where,
                        f"the problem is for domain '{prob.domain_name}' but the domain is '{dom.name}'",
                        f"write (:domain {dom.name})",
                    )
                )
        elif head == ":objects":
            for o, types in _typed_list(body, "objects", diags):
                if o.text in prob.objects:
                    diags.append(_err(o.where, f"object '{o.text}' is declared twice"))
                for t in types:
                    if t != "object" and t not in dom.parents:
                        diags.append(
                            _err(
                                o.where,
                                f"type '{t}' of object '{o.text}' is not declared in the domain",
                                f"the domain's types are: {', '.join(sorted(dom.parents)) or 'none'}",
                            )
                        )
                prob.objects[o.text] = types
        elif head == ":init":
            for a in body:
                if (
                    isinstance(a, SList)
                    and a.head() == "="
                    and len(a.items) == 3
                    and isinstance(a.items[1], SList)
                ):
                    numeric_init.append(a)
                elif (
                    isinstance(a, SList)
                    and a.head() == "at"
                    and len(a.items) == 3
                    and isinstance(a.items[1], Atom)
                    and a.items[1].text.replace(".", "", 1).isdigit()
                    and isinstance(a.items[2], SList)
                ):
                    diags.append(_unsupported(a.where, "a timed initial literal", ""))
                elif isinstance(a, SList):
                    init_atoms.append(a)
                else:
                    diags.append(
                        _err(a.where, f"'{a.text}' in :init must be an atom in parentheses")
                    )
        elif head == ":goal":
            prob.goal = body[0] if body else None
        elif head == ":metric":
            prob.metric = s
            if not is_total_cost_metric(s):
                diags.append(
                    _unsupported(
                        s.where,
                        f"the metric {render(s)[:60]}",
                        "the planners minimise action costs only: (:metric minimize (total-cost))",
                    )
                )
        elif head == ":constraints":
            diags.append(_unsupported(s.where, "state-trajectory constraints (PDDL 3)", ""))
        elif head == ":requirements":
            pass
        else:
            diags.append(_err(s.where, f"unknown problem section {head}"))
    for a in numeric_init:
        _read_value(dom, a, prob, diags)
    derived = dom.derived
    for a in init_atoms:
        if a.head() in derived:
            diags.append(
                _err(
                    a.where,
                    f"'{a.head()}' is a derived predicate: :init cannot list it",
                    "it follows from the other facts by its :derived rule; remove it",
                )
            )
            continue
        if a.head() == "not":
            diags.append(
                _err(
                    a.where,
                    "negative facts do not belong in :init (everything not listed is false)",
                    "remove it",
                )
            )
            continue
        _check_atom(dom, a, {}, prob.objects, "init", diags)
        prob.init.append((a.head(), tuple(x.text for x in a.items[1:] if isinstance(x, Atom))))
    if prob.goal is None:
        diags.append(_err("problem", "the problem has no (:goal ...)"))
    else:
        _check_formula(dom, prob.goal, {}, prob.objects, "goal", diags, effect=False)
    if any(isinstance(d, Unsupported) for d in diags):
        _raise(diags[:25], "problem")
    if diags:
        kind = (
            "parse"
            if any("define" in d.message or "expected" in d.message for d in diags)
            else "symbol"
        )
        raise ArtifactError(kind, diags[:25], f"the problem has {len(diags)} problem(s) to fix")
    return prob


def is_total_cost_metric(s: SList) -> bool:
    """Whether ``s`` is ``(:metric minimize (total-cost))``."""
    if len(s.items) != 3:
        return False
    sense, what = s.items[1], s.items[2]
    return (
        isinstance(sense, Atom)
        and sense.text == "minimize"
        and isinstance(what, SList)
        and len(what.items) == 1
        and what.head() == "total-cost"
    )


def _read_value(dom: Domain, a: SList, prob: Problem, diags: list[Diagnostic]) -> None:
    """``(= (f o1 o2) N)`` in :init: a declared function over declared objects, and a value the
    planners take (a non-negative integer)."""
    fn, val = a.items[1], a.items[2]
    assert isinstance(fn, SList)
    name = fn.head()
    if name == "total-cost" and name not in dom.functions:
        return  # the planners take (= (total-cost) 0) for a domain without costs, and so do we
    if name not in dom.functions:
        diags.append(
            _err(
                a.where,
                f"function '{name}' is not declared in the domain",
                f"the domain's functions are: {', '.join(sorted(dom.functions)) or 'none'}",
            )
        )
        return
    args = fn.items[1:]
    if len(args) != dom.functions[name] or not all(isinstance(x, Atom) for x in args):
        diags.append(
            _err(
                a.where,
                f"function '{name}' takes {dom.functions[name]} object(s), given {render(fn)}",
            )
        )
        return
    for x in args:
        assert isinstance(x, Atom)
        _term_types(dom, x, {}, prob.objects, "init", diags)
    if not isinstance(val, Atom):
        diags.append(_err(a.where, f"{render(a)[:60]}: the value must be a number"))
        return
    number = _integer_value(val.text)
    if number is None:
        try:
            float(val.text)
        except ValueError:
            diags.append(_err(a.where, f"{render(a)[:60]}: the value must be a number"))
            return
        diags.append(
            _unsupported(
                a.where,
                f"the value {val.text} of {render(fn)} (function values are non-negative integers)",
                "Fast Downward reads no signs, fractions or exponents: scale costs to integers",
            )
        )
        return
    key = (name, tuple(x.text for x in args if isinstance(x, Atom)))
    prob.numeric_init[key] = float(number)
