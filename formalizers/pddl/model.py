"""PDDL domains and problems as data, with located checks.

This reader covers the PDDL that classical planners take (STRIPS, typing with ``either``, negative
preconditions, equality, conditional and universal effects, quantified conditions, action costs). It
exists to say precisely what is wrong with a model-written file, where, and how to fix it
(undeclared predicate, object or type, wrong arity, type mismatch, unbalanced parentheses), and to
validate plans by simulation where unified-planning cannot read the files.
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
class Domain:
    name: str
    requirements: list[str] = field(default_factory=list)
    parents: dict[str, list[str]] = field(default_factory=dict)
    """Each declared type and its direct super-types (``object`` is implicit)."""
    constants: dict[str, Types] = field(default_factory=dict)
    predicates: dict[str, list[Types]] = field(default_factory=dict)
    functions: dict[str, int] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)
    text: str = ""

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
            i = 0
            while i < len(body):
                f = body[i]
                if isinstance(f, SList) and f.items and isinstance(f.items[0], Atom):
                    dom.functions[f.head()] = len(_typed_list(f.items[1:], "function", diags))
                i += 1
        elif head == ":action":
            _read_action(dom, s, diags)
        elif head in (":derived", ":durative-action"):
            diags.append(_err(s.where, f"{head} is not supported by the planners used here"))
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
    if diags:
        raise ArtifactError(
            "symbol" if all("line" in d.location for d in diags) else "parse",
            diags,
            f"the domain has {len(diags)} problem(s) to fix",
        )
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
    elif head in ("increase", "decrease", "assign", "scale-up", "scale-down"):
        return
    else:
        _check_atom(dom, f, scope, objects, where, diags)


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
                    fn = a.items[1]
                    val = a.items[2]
                    try:
                        number = float(val.text) if isinstance(val, Atom) else None
                    except ValueError:
                        number = None
                    if number is None:
                        diags.append(_err(a.where, f"{render(a)}: the value must be a number"))
                        continue
                    key = (fn.head(), tuple(x.text for x in fn.items[1:] if isinstance(x, Atom)))
                    prob.numeric_init[key] = number
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
        elif head == ":requirements":
            pass
        else:
            diags.append(_err(s.where, f"unknown problem section {head}"))
    for a in init_atoms:
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
    if diags:
        kind = (
            "parse"
            if any("define" in d.message or "expected" in d.message for d in diags)
            else "symbol"
        )
        raise ArtifactError(kind, diags[:25], f"the problem has {len(diags)} problem(s) to fix")
    return prob
