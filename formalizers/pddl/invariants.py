"""Mutual exclusions a domain's actions keep, and start states that break them.

An *exclusion group* is a set of atom schemas, one per predicate, over shared group parameters, such
that for every binding of those parameters at most one matching atom is true. In blocksworld,
``{(arm-empty), (holding *)}`` (the arm is empty or holds one block), ``{(holding x), (on x *),
(on-table x)}`` (a block is in one place) and ``{(clear y), (on * y), (holding y)}``; in gripper,
``{(at-robby r *)}`` (a robot is in one room).

A group is found from the domain alone, by Helmert's monotonicity argument ("Concise finite-domain
representations for PDDL planning tasks", 2009), restricted to what can be shown syntactically:
every action that makes an atom of the group true, in a state where the group held, also deletes an
atom of the same group instance that its precondition requires, and no action adds two atoms of one
instance. Then no action turns a state that respects the group into one that breaks it, so a start
state that breaks it is one that no sequence of actions could have produced: the person or the
model that wrote the start state most likely made a mistake there. (The group is a true invariant
of a task only when its start state respects it; that is exactly what is checked here.)

Every step errs on the side of finding fewer groups: preconditions are read only where they are
guaranteed (atoms of the top-level conjunction, and ``(not (= ?a ?b))``); an action with a
conditional or universal effect that adds an atom of the group rules the group out; two terms are
taken as different only when they are different constants or the precondition says so. Predicates
that no action adds (static facts such as road maps) are never part of a group: nothing bounds how
many of them a task lists. The search has a budget (``MAX_CANDIDATES``, ``MAX_SECONDS``); what it
has not finished checking is left out, never reported.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.errors import ArtifactError
from formalizers.pddl.model import Domain, Problem
from formalizers.pddl.sexpr import Atom, SList, parse_sexprs

MAX_CANDIDATES = 5000
"""The most candidate groups checked against the actions for one domain."""
MAX_SECONDS = 1.0
"""The most time the search for groups takes for one domain, in seconds (process time aside: wall)."""

Term = str
"""A variable (``?x``) or an object or constant name."""
Lit = tuple[str, tuple[Term, ...]]
"""An atom schema: predicate and terms."""


@dataclass(frozen=True, slots=True)
class Part:
    """One predicate of a group: ``slots[j]`` is the group parameter at argument ``j``, or -1 for
    the one argument that is counted (may vary within a group instance)."""

    pred: str
    slots: tuple[int, ...]

    def instance(self, args: tuple[Term, ...]) -> tuple[Term, ...]:
        """The group instance (values of the group parameters) an atom with ``args`` falls in."""
        out = [""] * sum(1 for s in self.slots if s >= 0)
        for arg, s in zip(args, self.slots, strict=True):
            if s >= 0:
                out[s] = arg
        return tuple(out)

    def render(self, names: str = "xyzuvw") -> str:
        args = " ".join("*" if s < 0 else names[s % len(names)] for s in self.slots)
        return f"({self.pred}{' ' + args if args else ''})"


@dataclass(frozen=True, slots=True)
class Step:
    """Why one action keeps a group: it adds ``added`` and deletes ``deleted`` (required by its
    precondition), both in one group instance."""

    action: str
    added: Lit
    deleted: Lit


@dataclass(frozen=True, slots=True)
class Group:
    """An exclusion group the domain's actions keep, with the steps that show it."""

    parts: tuple[Part, ...]
    steps: tuple[Step, ...] = ()

    def part(self, pred: str) -> Part | None:
        return next((p for p in self.parts if p.pred == pred), None)

    def render(self) -> str:
        return "at most one of " + ", ".join(p.render() for p in self.parts)


@dataclass(frozen=True, slots=True)
class Contradiction:
    """Atoms of the start state that a group allows at most one of; ``lines`` gives where each is
    written in the problem file ("" where unknown)."""

    atoms: tuple[Lit, ...]
    group: Group
    lines: tuple[str, ...]

    @property
    def facts(self) -> list[str]:
        return [fact(a) for a in self.atoms]

    def text(self) -> str:
        facts = [f"{f}, at {w}," if w else f for f, w in zip(self.facts, self.lines, strict=True)]
        both = (
            f"both {facts[0]} and {facts[1]}"
            if len(facts) == 2
            else ", ".join(facts[:-1]) + f" and {facts[-1]}"
        )
        never = "never allow together" if len(facts) == 2 else "allow at most one of at a time"
        return (
            f"the start state has {both.rstrip(',')}, which this domain's actions {never}: "
            f"{self.reason()}"
        )

    def reason(self) -> str:
        preds = {p for p, _ in self.atoms}
        steps = [s for s in self.group.steps if s.added[0] in preds or s.deleted[0] in preds]
        # first the steps between the clashing facts, then those that make one of them true
        steps.sort(
            key=lambda s: (
                not (s.added[0] in preds and s.deleted[0] in preds),
                s.added[0] not in preds,
                s.action,
            )
        )
        said = [f"{s.action} adds {fact(s.added)} and deletes {fact(s.deleted)}" for s in steps[:3]]
        if not said:
            return "no action adds any of them"
        more = len(steps) - len(said)
        return "; ".join(said) + (f" (and {more} more such step(s))" if more > 0 else "")

    def hint(self) -> str:
        facts = self.facts
        keep = "one of them" if len(facts) == 2 else "at most one of them"
        return f"remove {' or '.join(facts)} from :init: keep {keep}, the one the request describes"


def fact(lit: Lit) -> str:
    pred, args = lit
    return f"({pred}{' ' + ' '.join(args) if args else ''})"


@dataclass(slots=True)
class _Action:
    """An action as far as the check reads it: guaranteed precondition atoms and inequalities,
    unconditional adds and deletes, and the predicates that conditional effects may add."""

    name: str
    pre: list[Lit] = field(default_factory=list)
    neq: set[frozenset[Term]] = field(default_factory=set)
    adds: list[Lit] = field(default_factory=list)
    dels: list[Lit] = field(default_factory=list)
    unsure_adds: set[str] = field(default_factory=set)


def _lit(f: SList) -> Lit:
    return f.head(), tuple(a.text for a in f.items[1:] if isinstance(a, Atom))


def _read_pre(f: object, act: _Action) -> None:
    if not isinstance(f, SList) or not f.items:
        return
    head = f.head()
    if head == "and":
        for g in f.items[1:]:
            _read_pre(g, act)
    elif head == "not":
        inner = f.items[1] if len(f.items) > 1 else None
        if isinstance(inner, SList) and inner.head() == "=" and len(inner.items) == 3:
            a, b = inner.items[1], inner.items[2]
            if isinstance(a, Atom) and isinstance(b, Atom):
                act.neq.add(frozenset((a.text, b.text)))
    elif head not in ("or", "imply", "forall", "exists", "=", "<", "<=", ">", ">="):
        if all(isinstance(a, Atom) for a in f.items):
            act.pre.append(_lit(f))


def _added_preds(f: object, out: set[str]) -> None:
    """Every predicate that ``f`` (an effect) may make true, however deeply nested."""
    if not isinstance(f, SList) or not f.items:
        return
    head = f.head()
    if head == "and":
        for g in f.items[1:]:
            _added_preds(g, out)
    elif head == "forall" and len(f.items) == 3:
        _added_preds(f.items[2], out)
    elif head == "when" and len(f.items) == 3:
        _added_preds(f.items[2], out)
    elif head not in ("not", "increase", "decrease", "assign", "scale-up", "scale-down"):
        out.add(head)


def _read_effect(f: object, act: _Action) -> None:
    if not isinstance(f, SList) or not f.items:
        return
    head = f.head()
    if head == "and":
        for g in f.items[1:]:
            _read_effect(g, act)
    elif head in ("forall", "when"):
        _added_preds(f, act.unsure_adds)  # deletes under a condition cannot be relied on
    elif head == "not":
        inner = f.items[1] if len(f.items) > 1 else None
        if isinstance(inner, SList) and all(isinstance(a, Atom) for a in inner.items):
            act.dels.append(_lit(inner))
    elif head not in ("increase", "decrease", "assign", "scale-up", "scale-down"):
        if all(isinstance(a, Atom) for a in f.items):
            act.adds.append(_lit(f))
        else:
            act.unsure_adds.add(head)


def _actions(dom: Domain) -> list[_Action]:
    out = []
    for a in dom.actions.values():
        act = _Action(a.name)
        _read_pre(a.precondition, act)
        _read_effect(a.effect, act)
        out.append(act)
    return out


class _Unifier:
    """Union-find over terms; constants never merge with each other."""

    def __init__(self) -> None:
        self.parent: dict[Term, Term] = {}

    def find(self, t: Term) -> Term:
        while self.parent.get(t, t) != t:
            t = self.parent[t]
        return t

    def union(self, a: Term, b: Term) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if not ra.startswith("?") and not rb.startswith("?"):
            return False
        if ra.startswith("?"):
            self.parent[ra] = rb
        else:
            self.parent[rb] = ra
        return True


def _unify(pairs: Iterable[tuple[Term, Term]]) -> _Unifier | None:
    """The most general unifier making each pair equal, or None when two constants would merge."""
    u = _Unifier()
    for a, b in pairs:
        if not u.union(a, b):
            return None
    return u


class _Checker:
    """Checks candidate groups against a domain's actions."""

    def __init__(self, actions: list[_Action], fluent: set[str]) -> None:
        self.actions = actions
        self.fluent = fluent

    def _distinct(self, u: _Unifier, act: _Action, a: Term, b: Term) -> bool:
        """Whether terms ``a`` and ``b`` differ in every binding that ``u`` allows."""
        ra, rb = u.find(a), u.find(b)
        if ra == rb:
            return False
        if not ra.startswith("?") and not rb.startswith("?"):
            return True
        return any({u.find(x) for x in pair} == {ra, rb} for pair in act.neq if len(pair) == 2)

    def _never(self, u: _Unifier | None, act: _Action, parts: dict[str, Part]) -> bool:
        """Whether ``act`` cannot run with its terms merged as ``u`` says, in a state that respects
        the group: the merge breaks an inequality of its precondition, or makes its precondition
        need two distinct atoms of one group instance."""
        if u is None:
            return True
        for pair in act.neq:
            if len(pair) == 2:
                a, b = tuple(pair)
                if u.find(a) == u.find(b):
                    return True
        seen: dict[tuple[Term, ...], list[Lit]] = defaultdict(list)
        for pred, args in act.pre:
            part = parts.get(pred)
            if part is None or len(args) != len(part.slots):
                continue
            mapped = tuple(u.find(a) for a in args)
            inst = part.instance(mapped)
            for other_pred, other in seen[inst]:
                if other_pred != pred or any(
                    self._distinct(u, act, x, y) for x, y in zip(other, mapped, strict=True)
                ):
                    return True
            seen[inst].append((pred, mapped))
        return False

    def check(self, parts: dict[str, Part]) -> tuple[bool, list[Step], tuple[_Action, Lit] | None]:
        """(kept, steps, unbalanced): whether every action keeps the group, the steps that show
        it, and an add that no delete balances (for refining the candidate), if that is the cause."""
        steps: list[Step] = []
        for act in self.actions:
            if act.unsure_adds & parts.keys():
                return False, [], None
            increases = []
            for e in act.adds:
                part = parts.get(e[0])
                if part is None or len(e[1]) != len(part.slots):
                    continue
                if e in act.pre:
                    continue  # already true: the count does not grow
                inst = part.instance(e[1])
                balance = self._balancer(act, e, inst, parts)
                if balance is None:
                    return False, [], (act, e)
                steps.append(Step(act.name, e, balance))
                increases.append((e, inst))
            for (e1, i1), (e2, i2) in itertools.combinations(increases, 2):
                if e1 == e2:
                    continue  # one atom listed twice
                u = _unify(zip(i1, i2, strict=True))
                if u is None or self._never(u, act, parts):
                    continue
                # the two adds may fall in one instance: allowed only when they are then one atom
                if not (
                    e1[0] == e2[0]
                    and all(u.find(a) == u.find(b) for a, b in zip(e1[1], e2[1], strict=True))
                ):
                    return False, [], None
        return True, steps, None

    def _balancer(
        self, act: _Action, e: Lit, inst: tuple[Term, ...], parts: dict[str, Part]
    ) -> Lit | None:
        """A delete of ``act`` in the same group instance as the add ``e``, required by the
        precondition, and not made true again by another add."""
        for d in act.dels:
            part = parts.get(d[0])
            if part is None or len(d[1]) != len(part.slots) or d not in act.pre:
                continue
            if part.instance(d[1]) != inst:
                continue
            ok = True
            for a in act.adds:
                if a[0] != d[0]:
                    continue
                u = _unify(zip(a[1], d[1], strict=True))
                if u is None or self._never(u, act, parts):
                    continue
                if a == e:
                    continue  # e re-adds d: then e was already true, the count stays
                ok = False
                break
            if ok:
                return d
        return None

    def refinements(self, parts: dict[str, Part], act: _Action, e: Lit) -> list[dict[str, Part]]:
        """Candidates that add a part for an atom ``act`` deletes and requires, in the group
        instance of ``e``, so that the delete may balance ``e``."""
        inst = parts[e[0]].instance(e[1])
        out = []
        for d in act.dels:
            pred, args = d
            if pred in parts or pred not in self.fluent or d not in act.pre:
                continue
            choices = [[j for j, a in enumerate(args) if a == t] for t in inst]
            for picked in itertools.product(*choices):
                if len(set(picked)) != len(picked) or len(args) - len(picked) > 1:
                    continue
                slots = [-1] * len(args)
                for i, j in enumerate(picked):
                    slots[j] = i
                out.append({**parts, pred: Part(pred, tuple(slots))})
        return out


def _finer(fine: Group, coarse: Group) -> bool:
    """Whether ``fine`` keeps the same predicates apart object by object where ``coarse`` counts
    over all objects (tyreworld's "one of (open x), (closed x) per container" against "one of
    (open *), (closed *) in all"): the coarse count is only a count, true of a task with one
    container and of no other, so it says nothing about a mistake."""
    if fine is coarse or {p.pred for p in fine.parts} != {p.pred for p in coarse.parts}:
        return False
    wider = False
    for p in coarse.parts:
        q = fine.part(p.pred)
        assert q is not None
        if any(a < 0 <= b for a, b in zip(q.slots, p.slots, strict=True)):
            return False  # fine counts where coarse does not
        wider = wider or any(b < 0 <= a for a, b in zip(q.slots, p.slots, strict=True))
    return wider


def _canonical(parts: dict[str, Part]) -> tuple[Part, ...]:
    """One name for a group however its parameters are numbered."""
    ordered = sorted(parts.values(), key=lambda p: p.pred)
    first = ordered[0]
    order = [s for s in first.slots if s >= 0]
    rename = {old: new for new, old in enumerate(order)}
    return tuple(Part(p.pred, tuple(rename[s] if s >= 0 else -1 for s in p.slots)) for p in ordered)


_GROUPS: OrderedDict[str, tuple[Group, ...]] = OrderedDict()
_GROUPS_LOCK = threading.Lock()
CACHED_DOMAINS = 64
"""How many domains' groups are kept (by domain text; the least recently used go first)."""


def exclusion_groups(dom: Domain) -> tuple[Group, ...]:
    """The exclusion groups the domain's actions keep (cached by domain text), each able to hold
    two atoms at once in some state (a group of one predicate has a counted argument)."""
    with _GROUPS_LOCK:
        if dom.text in _GROUPS:
            _GROUPS.move_to_end(dom.text)
            return _GROUPS[dom.text]
    actions = _actions(dom)
    derived = dom.derived
    fluent = {p for a in actions for p, _ in a.adds} | {p for a in actions for p in a.unsure_adds}
    fluent = {p for p in fluent if p in dom.predicates and p not in derived}
    checker = _Checker(actions, fluent)
    queue: list[dict[str, Part]] = []
    for pred in sorted(fluent):
        n = len(dom.predicates[pred])
        queue.append({pred: Part(pred, tuple(range(n)))})
        for counted in range(n):
            slots = [-1] * n
            k = 0
            for j in range(n):
                if j != counted:
                    slots[j] = k
                    k += 1
            queue.append({pred: Part(pred, tuple(slots))})
    seen: set[tuple[Part, ...]] = set()
    found: dict[tuple[Part, ...], Group] = {}
    t0 = time.perf_counter()
    while queue and len(seen) < MAX_CANDIDATES and time.perf_counter() - t0 < MAX_SECONDS:
        parts = queue.pop(0)
        key = _canonical(parts)
        if key in seen:
            continue
        seen.add(key)
        kept, steps, unbalanced = checker.check(parts)
        if kept:
            if len(key) > 1 or any(s < 0 for s in key[0].slots):
                found[key] = Group(key, tuple(dict.fromkeys(steps)))
        elif unbalanced is not None:
            queue.extend(checker.refinements(parts, *unbalanced))
    groups = tuple(g for g in found.values() if not any(_finer(h, g) for h in found.values()))
    if dom.text and not queue:  # a search cut short by its budget is not kept
        with _GROUPS_LOCK:
            _GROUPS[dom.text] = groups
            while len(_GROUPS) > CACHED_DOMAINS:
                _GROUPS.popitem(last=False)
    return groups


def _init_lines(text: str) -> dict[Lit, str]:
    """Where each fact of a problem's ``:init`` is written ("line N, column M")."""
    out: dict[Lit, str] = {}
    try:
        tops = parse_sexprs(text, "problem")
    except ArtifactError:  # the text was read before; a reading that fails only loses lines
        return out
    for top in tops:
        if not isinstance(top, SList):
            continue
        for section in top.items:
            if isinstance(section, SList) and section.head() == ":init":
                for a in section.items[1:]:
                    if isinstance(a, SList) and all(isinstance(x, Atom) for x in a.items):
                        out.setdefault(_lit(a), a.where)
    return out


def _instances(g: Group, init: Iterable[Lit]) -> dict[tuple[Term, ...], list[Lit]]:
    """The facts of a start state by the instance of ``g`` they fall in."""
    members: dict[tuple[Term, ...], list[Lit]] = defaultdict(list)
    for atom in dict.fromkeys(init):
        part = g.part(atom[0])
        if part is not None and len(atom[1]) == len(part.slots):
            members[part.instance(atom[1])].append(atom)
    return members


def _trusted(g: Group, init: list[Lit], references: list[list[Lit]]) -> bool:
    """Whether a breach of ``g`` in ``init`` is a mistake rather than how the domain is used.

    The actions only show that no step raises an instance's count; a count above one may still be
    meant (floortile's clear tiles form such a group, and every task has many). So a group counts
    when a known-good start state of the domain (``references``) fills it without a breach, and
    never when one breaches it; with no reference that fills it, when this start state itself
    keeps it in at least two instances, in more instances than it breaks it, and has each
    predicate of the clashing facts alone in some instance (in barman only the shaker has a
    level, and an empty shaker has level l0: no other instance shows a level standing alone)."""
    filled = False
    for ref in references:
        counts = [len(v) for v in _instances(g, ref).values()]
        if any(c > 1 for c in counts):
            return False
        filled = filled or bool(counts)
    if filled:
        return True
    members = list(_instances(g, init).values())
    alone = {atoms[0][0] for atoms in members if len(atoms) == 1}
    kept = sum(1 for atoms in members if len(atoms) == 1)
    broken_preds = {a[0] for atoms in members if len(atoms) > 1 for a in atoms}
    return kept >= 2 and kept > len(members) - kept and broken_preds <= alone


def contradictions(
    dom: Domain, prob: Problem, references: Iterable[Problem] = ()
) -> list[Contradiction]:
    """The start state's breaches of the domain's exclusion groups, one per set of clashing facts
    (the first group that shows it), in the order the facts are written. ``references`` are
    start states known to be right for this domain (a library domain's example), which tell a
    group the domain means from a count that merely never grows (see ``_trusted``)."""
    groups = exclusion_groups(dom)
    if not groups:
        return []
    init = list(dict.fromkeys(prob.init))
    refs = [list(r.init) for r in references]
    order = {a: i for i, a in enumerate(init)}
    out: dict[frozenset[Lit], Contradiction] = {}
    lines: dict[Lit, str] | None = None
    for g in groups:
        broken = [atoms for atoms in _instances(g, init).values() if len(atoms) > 1]
        if not broken or not _trusted(g, init, refs):
            continue
        for atoms in broken:
            key = frozenset(atoms)
            if key in out:
                continue
            if lines is None:
                lines = _init_lines(prob.text)
            out[key] = Contradiction(tuple(atoms), g, tuple(lines.get(a, "") for a in atoms))
    return sorted(out.values(), key=lambda c: min(order[a] for a in c.atoms))
