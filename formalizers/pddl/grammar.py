"""Grammars of PDDL problem files, generated from the chosen domain (``PddlGrammar``): only its
predicates (with their arity and argument types), its types and the request's objects can be
written. Where the request's objects are not known, the model writes them first: ``PddlGrammar``
is a staged grammar (``agent.llm.grammar.Staged``): the header and ``(:objects ...)``, read back
through the project's parser, then facts and goals over exactly those objects. For requests with no
known domain, ``pddl_any_grammar``: a domain and a problem as balanced s-expressions.
EBNF in the GBNF dialect."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.errors import InputError
from agent.llm.grammar import Bounds, Grammar, alternatives, lit, name_rule
from formalizers.pddl.library import find
from formalizers.pddl.model import Domain, Types, read_domain, read_problem


def render_objects(objects: dict[str, Types]) -> str:
    """``objects`` as the body of an ``(:objects ...)`` section, grouped by type (untyped objects
    last, without ``- object``)."""
    groups: dict[str, list[str]] = {}
    for name, types in objects.items():
        t = types[0] if types else "object"
        groups.setdefault(t, []).append(name)
    parts = []
    for t, names in sorted(groups.items(), key=lambda kv: (kv[0] == "object", kv[0])):
        parts.append(" ".join(names) + ("" if t == "object" else f" - {t}"))
    return " ".join(parts)


class PddlGrammar:
    """Grammars for problem files of one domain.

    ``problem(objects)``: a whole problem over the given objects (the request's): every ``:init``
    fact and goal uses a declared predicate with its arity, and each argument is an object or
    constant whose type fits that argument's type. ``head()`` and ``tail(objects)`` split the same
    file for when the objects are not known: the model first writes the header and the objects
    (``head``), which are read back (``objects_from_head``) to build the rest (``tail``). As a
    ``Staged`` grammar (``format`` ``staged``): ``first`` is ``head``, ``then`` reads the objects
    back and gives the canonical header and ``tail``, ``validate`` reads the whole problem."""

    format = "staged"

    def __init__(self, domain: Domain, bounds: Bounds | None = None) -> None:
        self.domain = domain
        self.bounds = bounds or Bounds()
        self.key = domain.name

    @property
    def name(self) -> str:
        return f"pddl-problem:{self.key}"

    @property
    def id(self) -> str:
        """A short hash of what the grammars are built from: the domain's declarations and the
        bounds."""
        dom = self.domain
        text = repr(
            (dom.name, dom.requirements, dom.parents, dom.constants, dom.predicates, dom.functions)
        )
        return hashlib.sha256(f"staged\n{text}\n{self.bounds}".encode()).hexdigest()[:12]

    def with_bounds(self, bounds: Bounds) -> PddlGrammar:
        """The grammars of this domain under ``bounds``."""
        return PddlGrammar(self.domain, bounds)

    # the Staged protocol
    def first(self) -> Grammar:
        """The first phase: header and objects (``head``)."""
        return self.head()

    def then(self, first_text: str) -> tuple[str, Grammar]:
        """The header written canonically and the grammar of the rest, from a complete ``head``
        sample (its objects read back through the project's parser)."""
        objects = self.objects_from_head(first_text)
        return self.head_text(first_text, objects), self.tail(objects)

    def validate(self, text: str) -> Any:
        """The problem read from a whole sample (``read_problem`` against the domain)."""
        return read_problem(text, self.domain)

    # the file's pieces
    def _header(self, name_rule_ref: str) -> str:
        after = lit(")\n(:domain " + self.domain.name + ")\n(:objects")
        return f'"(define (problem " {name_rule_ref} {after}'

    def _fixed_init(self) -> str:
        facts = "".join(
            f"\n  (= ({f}) 0)" for f, arity in self.domain.functions.items() if not arity
        )
        return facts

    def _metric(self) -> str:
        if "total-cost" in self.domain.functions:
            return "\n(:metric minimize (total-cost))"
        return ""

    def _atom_rules(self, objects: dict[str, Types]) -> tuple[list[str], bool]:
        """Rules ``atom`` and one ``oN`` per argument type; False when no fact can be written."""
        dom = self.domain
        pool = {**dom.constants, **objects}
        slot_rules: dict[tuple[str, ...], str] = {}
        rules: list[str] = []
        options: list[str] = []
        for pred, params in sorted(dom.predicates.items()):
            parts = [lit(pred)]
            ok = True
            for want in params:
                key = tuple(sorted(want))
                if key not in slot_rules:
                    fits = sorted(o for o, have in pool.items() if dom.compatible(have, want))
                    if not fits:
                        slot_rules[key] = ""
                    else:
                        slot_rules[key] = f"o{len(rules)}"
                        rules.append(f"o{len(rules)} ::= {alternatives(fits)}")
                if not slot_rules[key]:
                    ok = False
                    break
                parts.append(f'" " {slot_rules[key]}')
            if ok:
                options.append(" ".join(parts))
        if not options:
            return rules, False
        atom = '"(" (' + " | ".join(options) + ') ")"'
        if ":negative-preconditions" in dom.requirements:
            rules.append('goalatom ::= atom | "(not " atom ")"')
        else:
            rules.append("goalatom ::= atom")
        rules.append(f"atom ::= {atom}")
        return rules, True

    def _body(self, objects: dict[str, Types]) -> tuple[str, list[str]]:
        """The expression from ``(:init`` to the end of the file, and its rules."""
        b = self.bounds
        rules, writable = self._atom_rules(objects)
        init_fixed = lit("\n(:init" + self._fixed_init())
        end = lit(self._metric() + "\n)")
        if not writable:
            return f'{init_fixed} ")\\n(:goal (and))" {end}', rules
        goals = max(b.max_statements // 2, 1)
        expr = (
            f'{init_fixed} ("\\n  " atom){{0,{b.max_statements}}} ")\\n(:goal (and" '
            f'("\\n  " goalatom){{1,{goals}}} "))" {end}'
        )
        return expr, rules

    def _name(self) -> str:
        return f"pname ::= {name_rule(self.bounds.max_name, '[a-z]', '[a-z0-9-]')}"

    def problem(self, objects: dict[str, Types]) -> Grammar:
        """The grammar of a whole problem file over ``objects`` (name -> types)."""
        body, rules = self._body(objects)
        head = self._header("pname") + " " + lit(" " + render_objects(objects) + ")")
        source = "\n".join([f"root ::= {head} {body}", self._name(), *rules])
        domain = self.domain
        return self._grammar(
            f"pddl-problem:{self.key}",
            source,
            rebuild=lambda other: PddlGrammar(domain, other).problem(objects),
        )

    def head(self) -> Grammar:
        """The grammar of a problem file's beginning: header and ``(:objects ...)``."""
        dom, b = self.domain, self.bounds
        types = sorted(t for t in dom.parents if t != "object")
        groups = min(b.max_items or 12, 12)
        per_group = min(b.max_items or 8, 8)
        if types:
            group = f'(" " oname){{1,{per_group}}} " - " otype'
            extra = [f"otype ::= {alternatives(types)}"]
        else:
            group = '" " oname'
            extra = []
        source = "\n".join(
            [
                f'root ::= {self._header("pname")} ({group}){{1,{groups}}} ")"',
                self._name(),
                f"oname ::= {name_rule(min(b.max_name, 12), '[a-z]', '[a-z0-9]')}",
                *extra,
            ]
        )
        return Grammar(f"pddl-head:{self.key}", "ebnf", source, "pddl-head", self.objects_from_head)

    def objects_from_head(self, text: str) -> dict[str, Types]:
        """The objects declared in a ``head`` sample (a repeated name keeps its first type)."""
        start = text.find("(:objects")
        if start < 0:
            raise ValueError("no (:objects ...) section")
        body = text[start + len("(:objects") :].rstrip().removesuffix(")")
        seen: dict[str, Types] = {}
        # Read each group through the project's parser, so types are checked the same way.
        prob = read_problem(
            f"(define (problem p) (:domain {self.domain.name}) (:objects {_dedupe(body)}) "
            "(:init) (:goal (and)))",
            self.domain,
        )
        seen.update(prob.objects)
        return seen

    def head_text(self, sample: str, objects: dict[str, Types]) -> str:
        """``sample``'s header with its objects written canonically (duplicates dropped)."""
        start = sample.find("(:objects")
        return sample[:start] + "(:objects " + render_objects(objects) + ")"

    def tail(self, objects: dict[str, Types]) -> Grammar:
        """The grammar of the rest of the file after ``head_text``."""
        body, rules = self._body(objects)
        source = "\n".join([f"root ::= {body}", *rules])
        return self._grammar(f"pddl-tail:{self.key}", source, artifact="pddl-tail")

    def _grammar(
        self,
        name: str,
        source: str,
        artifact: str = "pddl",
        rebuild: Callable[[Bounds], Grammar] | None = None,
    ) -> Grammar:
        domain = self.domain

        def validate(text: str) -> Any:
            return read_problem(text, domain)

        return Grammar(
            name, "ebnf", source, artifact, validate if artifact == "pddl" else None, rebuild
        )


def _dedupe(objects_body: str) -> str:
    """An ``(:objects ...)`` body with repeated names removed (the first declaration stays)."""
    tokens = objects_body.split()
    out: list[str] = []
    pending: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "-" and i + 1 < len(tokens):
            if pending:
                out.extend([*pending, "-", tokens[i + 1]])
            pending = []
            i += 2
            continue
        if tok not in seen:
            seen.add(tok)
            pending.append(tok)
        i += 1
    out.extend(pending)
    return " ".join(out)


def read_domain_arg(arg: str) -> Domain:
    """A domain from a PDDL file's path or a shipped domain's name (``blocksworld``)."""
    known = find(arg)
    if known is not None:
        return known.domain
    p = Path(arg)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{arg!r} is neither a known domain nor a readable PDDL file: {e}") from e
    return read_domain(text)


def parse_objects(text: str, domain: Domain) -> dict[str, Types]:
    """Objects written as a PDDL typed list (``b1 b2 - block t1 - truck``), checked against
    ``domain`` by the project's problem reader."""
    prob = read_problem(
        f"(define (problem p) (:domain {domain.name}) (:objects {text}) (:init) (:goal (and)))",
        domain,
    )
    if not prob.objects:
        raise InputError("no objects given")
    return prob.objects


def pddl_any_grammar(bounds: Bounds | None = None) -> Grammar:
    """A domain file and a problem file as balanced s-expressions (for requests with no known
    domain, where the model writes both): well-formed, but only the reader can check symbols."""
    b = bounds or Bounds()
    source = "\n".join(
        [
            'root ::= "(define (domain " name ")" sx3{1,12} "\\n)\\n\\n(define (problem " name ")" '
            'sx3{1,12} "\\n)"',
            'sx3 ::= "\\n  " ("(" word (" " sx2){0,8} ")" | word)',
            'sx2 ::= "(" word (" " sx1){0,8} ")" | word',
            'sx1 ::= "(" word (" " word){0,8} ")" | word',
            f"word ::= [a-z:?=<>+*/-] [a-z0-9_-]{{0,{b.max_name - 1}}} | [0-9]{{1,6}}",
            f"name ::= {name_rule(b.max_name, '[a-z]', '[a-z0-9-]')}",
        ]
    )
    return Grammar("pddl-any", "ebnf", source, "pddl-any", None, pddl_any_grammar)
