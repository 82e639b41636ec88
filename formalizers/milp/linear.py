"""Meaning of a five-element model: symbol checks, index expansion, and linear compilation.

``compile_model`` turns a ``FiveElementModel`` into a ``LinearModel`` (columns, rows with
coefficients, a linear objective) that any LP/MIP backend can load. Every problem found is collected
into one ``ArtifactError`` so the language model can fix them in one round. The same evaluator,
given solution values instead of columns, recomputes every constraint for the verifier.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.errors import ArtifactError, Diagnostic
from formalizers.milp.expr import (
    BinOp,
    BoolOp,
    Compare,
    ExprSyntaxError,
    InSet,
    Name,
    Neg,
    Node,
    Not,
    Num,
    Ref,
    Str,
    Sum,
    names_in,
    parse_condition,
    parse_constraint,
    parse_expression,
    unparse,
)

if TYPE_CHECKING:  # annotations only: an LP or MPS file never loads pydantic
    from formalizers.milp.model import ConstraintDef, FiveElementModel, ParamDef, VarDef

INF = math.inf
MAX_INSTANCES = 1_000_000
"""Most variable columns (all variables together), or constraint rows, one model may expand to."""
MAX_STEPS = 20_000_000
"""Most index combinations one compilation (or re-evaluation) may visit, filtered out or not: the
work bound that keeps a small text with deeply nested sums from running for minutes."""

MemberValue = int | str
Key = tuple[MemberValue, ...]


@dataclass(frozen=True, slots=True)
class Column:
    """One variable instance. ``name`` is ``x`` or ``x[a,1]``."""

    name: str
    var: str
    key: Key
    lower: float
    upper: float
    integer: bool


@dataclass(frozen=True, slots=True)
class Row:
    """One constraint instance: ``lower <= sum(coeffs[c] * x[c]) <= upper``."""

    name: str
    family: str
    key: Key
    lower: float
    upper: float
    coeffs: dict[int, float]
    text: str
    description: str


@dataclass(slots=True)
class LinearModel:
    """A compiled linear model. ``objective`` maps column index to cost; ``offset`` is the constant."""

    name: str
    sense: str
    columns: list[Column]
    rows: list[Row]
    objective: dict[int, float]
    offset: float = 0.0
    source: FiveElementModel | None = None
    dropped_rows: int = 0
    """Constraint instances with no variables that hold trivially (left out of ``rows``)."""
    column_index: dict[str, int] = field(default_factory=dict)

    @property
    def is_mip(self) -> bool:
        return any(c.integer for c in self.columns)

    def render_row(self, row: Row) -> str:
        """The row with numbers filled in: ``staff[support] >= 6``."""
        terms = []
        for c, a in row.coeffs.items():
            name = self.columns[c].name
            mag = "" if abs(a) == 1 else f"{abs(a):g} * "
            terms.append(("- " if a < 0 else "+ ") + mag + name)
        body = " ".join(terms).removeprefix("+ ")
        if row.lower == row.upper:
            return f"{body} == {row.lower:g}"
        if row.lower == -INF:
            return f"{body} <= {row.upper:g}"
        if row.upper == INF:
            return f"{body} >= {row.lower:g}"
        return f"{row.lower:g} <= {body} <= {row.upper:g}"


class _Lin:
    """An affine expression: ``const + sum(terms[col] * x[col])``; ``text`` names it in feedback."""

    __slots__ = ("const", "terms")

    def __init__(self, const: float, terms: dict[int, float]) -> None:
        self.const = const
        self.terms = terms


Value = float | int | str | _Lin


class _EvalError(Exception):
    def __init__(
        self, node: Node | None, message: str, hint: str = "", kind: str = "symbol"
    ) -> None:
        super().__init__(message)
        self.node = node
        self.message = message
        self.hint = hint
        self.kind = kind


class _Param:
    __slots__ = ("data", "default", "index", "name", "scalar")

    def __init__(
        self,
        name: str,
        index: tuple[str, ...],
        scalar: float | None,
        data: dict[Key, float],
        default: float | None,
    ) -> None:
        self.name = name
        self.index = index
        self.scalar = scalar
        self.data = data
        self.default = default


class _Var:
    __slots__ = ("cols", "index", "name")

    def __init__(self, name: str, index: tuple[str, ...]) -> None:
        self.name = name
        self.index = index
        self.cols: dict[Key, int] = {}


def _fmt_member(m: MemberValue) -> str:
    return str(m)


def instance_name(base: str, key: Key) -> str:
    """``x`` for a scalar, ``x[a,1]`` for an indexed instance."""
    return base if not key else f"{base}[{','.join(_fmt_member(k) for k in key)}]"


class Scope:
    """Symbol tables of one model, and an evaluator over them.

    With ``values`` unset, variable references evaluate to linear terms (compilation); with
    ``values`` set (one float per column), to numbers (verification).
    """

    def __init__(self, model: FiveElementModel, diags: list[Diagnostic]) -> None:
        self.model = model
        self.sets: dict[str, tuple[MemberValue, ...]] = {}
        self.lookup: dict[str, dict[Any, MemberValue]] = {}
        self.params: dict[str, _Param] = {}
        self.vars: dict[str, _Var] = {}
        self.values: Sequence[float] | None = None
        self.steps = 0
        self._declare(diags)

    # -- declarations ------------------------------------------------------------------------
    def _declare(self, diags: list[Diagnostic]) -> None:
        seen: dict[str, str] = {}

        def claim(name: str, kind: str, where: str) -> bool:
            if name in seen:
                diags.append(
                    Diagnostic(
                        where,
                        f"'{name}' is declared twice (already a {seen[name]})",
                        "give every set, parameter and variable its own name",
                    )
                )
                return False
            if name in ("sum", "for", "in", "if", "and", "or", "not"):
                diags.append(Diagnostic(where, f"'{name}' is a reserved word", "rename it"))
                return False
            seen[name] = kind
            return True

        for i, s in enumerate(self.model.sets):
            if claim(s.name, "set", f"sets[{i}]"):
                members = tuple(s.members)
                self.sets[s.name] = members
                table: dict[Any, MemberValue] = {}
                for m in members:
                    table[m] = m
                    table[str(m)] = m
                self.lookup[s.name] = table
        for i, p in enumerate(self.model.parameters):
            if claim(p.name, "parameter", f"parameters[{i}]"):
                self._declare_param(i, p, diags)
        for i, v in enumerate(self.model.variables):
            if claim(v.name, "variable", f"variables[{i}]"):
                missing = [s for s in v.index if s not in self.sets]
                if missing:
                    diags.append(
                        Diagnostic(
                            f"variables[{i}] ({v.name})",
                            f"index set(s) {', '.join(missing)} are not declared",
                            "declare them under 'sets' or fix the name",
                        )
                    )
                    continue
                self.vars[v.name] = _Var(v.name, tuple(v.index))

    def _declare_param(self, i: int, p: ParamDef, diags: list[Diagnostic]) -> None:
        where = f"parameters[{i}] ({p.name})"
        if not p.index:
            assert p.value is not None
            if not math.isfinite(p.value):
                diags.append(Diagnostic(where, "value must be a finite number"))
                return
            self.params[p.name] = _Param(p.name, (), float(p.value), {}, None)
            return
        missing = [s for s in p.index if s not in self.sets]
        if missing:
            diags.append(
                Diagnostic(
                    where,
                    f"index set(s) {', '.join(missing)} are not declared",
                    "declare them under 'sets' or fix the name",
                )
            )
            return
        data: dict[Key, float] = {}
        problems: list[str] = []
        if p.values is not None:
            self._read_values(p.values, tuple(p.index), (), data, problems)
        if problems:
            diags.append(
                Diagnostic(
                    where,
                    "; ".join(problems[:5]),
                    "key 'values' by the members of its index sets, one level per set",
                )
            )
            return
        if p.default is None:
            total = math.prod(len(self.sets[s]) for s in p.index)
            if len(data) < total:
                absent = next(
                    k for k in itertools.product(*(self.sets[s] for s in p.index)) if k not in data
                )
                diags.append(
                    Diagnostic(
                        where,
                        f"has {len(data)} of {total} values; "
                        f"{instance_name(p.name, absent)} is missing",
                        "give every value or add a 'default'",
                    )
                )
                return
        if p.default is not None and not math.isfinite(p.default):
            diags.append(Diagnostic(where, "default must be a finite number"))
            return
        self.params[p.name] = _Param(
            p.name, tuple(p.index), None, data, float(p.default) if p.default is not None else None
        )

    def _read_values(
        self,
        node: Any,
        index: tuple[str, ...],
        prefix: Key,
        out: dict[Key, float],
        problems: list[str],
    ) -> None:
        set_name = index[len(prefix)]
        members = self.sets[set_name]
        last = len(prefix) + 1 == len(index)
        if isinstance(node, dict):
            items: list[tuple[Any, Any]] = list(node.items())
            table = self.lookup[set_name]
            resolved: list[tuple[MemberValue, Any]] = []
            for k, v in items:
                if k in table or str(k) in table:
                    resolved.append((table[k] if k in table else table[str(k)], v))
                elif "," in str(k) and len(index) - len(prefix) > 1:
                    # "a,b" flat keys for the remaining dimensions
                    parts = [part.strip() for part in str(k).split(",")]
                    self._read_flat(parts, v, index, prefix, out, problems)
                else:
                    problems.append(f"key {k!r} is not a member of set {set_name}")
        elif isinstance(node, list):
            if len(node) != len(members):
                problems.append(
                    f"list of {len(node)} values for set {set_name} of {len(members)} members"
                )
                return
            resolved = list(zip(members, node, strict=True))
        else:
            problems.append(
                f"expected values for each member of {set_name}, found {type(node).__name__}"
            )
            return
        for member, v in resolved:
            key = (*prefix, member)
            if last:
                num = _as_number(v)
                if num is None:
                    problems.append(f"value for {key} is not a finite number: {v!r}")
                else:
                    out[key] = num
            else:
                self._read_values(v, index, key, out, problems)

    def _read_flat(
        self,
        parts: list[str],
        v: Any,
        index: tuple[str, ...],
        prefix: Key,
        out: dict[Key, float],
        problems: list[str],
    ) -> None:
        rest = index[len(prefix) :]
        if len(parts) != len(rest):
            problems.append(
                f"key {','.join(parts)!r} has {len(parts)} parts for {len(rest)} index sets"
            )
            return
        key: list[MemberValue] = list(prefix)
        for part, s in zip(parts, rest, strict=True):
            if part not in self.lookup[s]:
                problems.append(f"{part!r} is not a member of set {s}")
                return
            key.append(self.lookup[s][part])
        num = _as_number(v)
        if num is None:
            problems.append(f"value for {tuple(key)} is not a finite number: {v!r}")
        else:
            out[tuple(key)] = num

    # -- index expansion ---------------------------------------------------------------------
    def bindings(
        self, binders: Sequence[tuple[str, str]], cond: Node | None, env: dict[str, MemberValue]
    ) -> Iterator[dict[str, MemberValue]]:
        """Every environment extending ``env`` with the binders, filtered by ``cond``."""
        for index_name, _ in binders:
            if index_name in self.params or index_name in self.vars or index_name in self.sets:
                raise _EvalError(
                    None,
                    f"index name '{index_name}' hides a declared symbol of the same name",
                    "use short lower-case index names such as i, j, t",
                )
        sets = []
        for _, set_name in binders:
            if set_name not in self.sets:
                kind = (
                    "a parameter"
                    if set_name in self.params
                    else ("a variable" if set_name in self.vars else "not declared")
                )
                raise _EvalError(
                    None,
                    f"'{set_name}' after 'in' is {kind}; it must be a set",
                    "declare the set under 'sets'",
                )
            sets.append(self.sets[set_name])
        names = [b[0] for b in binders]
        if self.steps + math.prod(len(s) for s in sets) > MAX_STEPS:
            raise _EvalError(
                None,
                f"the model expands to more than {MAX_STEPS:,} index combinations",
                "the model is too large to compile; use smaller sets or fewer nested sums",
                kind="size",
            )
        self.steps += math.prod(len(s) for s in sets)
        for combo in itertools.product(*sets):
            local = dict(env)
            local.update(zip(names, combo, strict=True))
            if cond is None or self.truth(cond, local):
                yield local

    # -- evaluation --------------------------------------------------------------------------
    def truth(self, node: Node, env: dict[str, MemberValue]) -> bool:
        if isinstance(node, BoolOp):
            if node.op == "and":
                return all(self.truth(v, env) for v in node.values)
            return any(self.truth(v, env) for v in node.values)
        if isinstance(node, Not):
            return not self.truth(node.operand, env)
        if isinstance(node, InSet):
            if node.set not in self.sets:
                raise _EvalError(node, f"'{node.set}' is not a declared set")
            item = self.evaluate(node.item, env)
            return _member_key(item) in self.lookup[node.set]
        if isinstance(node, Compare):
            left = self.evaluate(node.operands[0], env)
            right = self.evaluate(node.operands[1], env)
            if isinstance(left, _Lin) or isinstance(right, _Lin):
                raise _EvalError(
                    node,
                    "a condition cannot depend on decision variables",
                    "conditions filter indices; move the variable part into the constraint",
                )
            return _compare(node.ops[0], left, right, node)
        raise _EvalError(node, f"'{unparse(node)}' is not a condition")

    def evaluate(self, node: Node, env: dict[str, MemberValue]) -> Value:
        if isinstance(node, Num):
            num = node.value
            return int(num) if num.is_integer() and abs(num) < 2**53 else num
        if isinstance(node, Str):
            return node.value
        if isinstance(node, Name):
            return self._name(node, env)
        if isinstance(node, Ref):
            return self._ref(node, env)
        if isinstance(node, BinOp):
            return self._binop(node, env)
        if isinstance(node, Neg):
            v = self.evaluate(node.operand, env)
            if isinstance(v, _Lin):
                return _Lin(-v.const, {c: -a for c, a in v.terms.items()})
            return -_num(v, node)
        if isinstance(node, Sum):
            return self._sum(node, env)
        raise _EvalError(node, f"'{unparse(node)}' is a condition where a value is expected")

    def _name(self, node: Name, env: dict[str, MemberValue]) -> Value:
        if node.id in env:
            return env[node.id]
        if node.id in self.params:
            p = self.params[node.id]
            if p.scalar is None:
                raise _EvalError(
                    node,
                    f"parameter '{node.id}' is indexed by {', '.join(p.index)} and needs indices",
                    f"write {node.id}[{', '.join(s[0].lower() for s in p.index)}]",
                )
            return p.scalar
        if node.id in self.vars:
            var = self.vars[node.id]
            if var.index:
                raise _EvalError(
                    node,
                    f"variable '{node.id}' is indexed by {', '.join(var.index)} and needs indices",
                    f"write {node.id}[...] inside sum(... for ... in {var.index[0]})",
                )
            return self._var_value(var, ())
        if node.id in self.sets:
            raise _EvalError(
                node,
                f"set '{node.id}' is used as a value",
                f"sum over it: sum(... for i in {node.id})",
            )
        raise _EvalError(
            node,
            f"'{node.id}' is not declared",
            "declare it as a parameter, variable or set, or bind it with 'for'",
        )

    def _ref(self, node: Ref, env: dict[str, MemberValue]) -> Value:
        if node.id in self.params:
            p = self.params[node.id]
            key = self._key(node, p.index, env, "parameter")
            if key in p.data:
                return p.data[key]
            if p.default is not None:
                return p.default
            raise _EvalError(node, f"{instance_name(node.id, key)} has no value")
        if node.id in self.vars:
            var = self.vars[node.id]
            return self._var_value(var, self._key(node, var.index, env, "variable"))
        if node.id in self.sets:
            raise _EvalError(node, f"set '{node.id}' cannot be indexed")
        if node.id in env:
            raise _EvalError(node, f"index '{node.id}' cannot be indexed")
        raise _EvalError(
            node,
            f"'{node.id}' is not declared",
            "declare it as a parameter or a variable with these index sets",
        )

    def _key(
        self, node: Ref, index: tuple[str, ...], env: dict[str, MemberValue], kind: str
    ) -> Key:
        if len(node.indices) != len(index):
            raise _EvalError(
                node,
                f"{kind} '{node.id}' takes {len(index)} ind{'ex' if len(index) == 1 else 'ices'} "
                f"({', '.join(index) or 'none'}), given {len(node.indices)}",
            )
        key: list[MemberValue] = []
        for sub, set_name in zip(node.indices, index, strict=True):
            raw = self.evaluate(sub, env)
            if isinstance(raw, _Lin):
                raise _EvalError(node, f"index of '{node.id}' depends on a decision variable")
            member = self.lookup[set_name].get(_member_key(raw))
            if member is None:
                raise _EvalError(
                    node,
                    f"index {raw!r} of {node.id} is not a member of set {set_name}",
                    "add a condition so the index stays inside the set (for example t > 1 for t-1)",
                    kind="index",
                )
            key.append(member)
        return tuple(key)

    def _var_value(self, var: _Var, key: Key) -> Value:
        col = var.cols.get(key)
        if col is None:
            raise _EvalError(
                None,
                f"variable '{var.name}' is used, but its declaration has an error",
                "fix the variable's declaration (see its own message)",
            )
        if self.values is not None:
            return float(self.values[col])
        return _Lin(0.0, {col: 1.0})

    def _binop(self, node: BinOp, env: dict[str, MemberValue]) -> Value:
        # Walk the left spine without recursion: a flat chain of many terms is a deep tree.
        spine = []
        first: Node = node
        if node.op == "^":
            return self._apply(node, self.evaluate(node.left, env), self.evaluate(node.right, env))
        while isinstance(first, BinOp) and first.op != "^":
            spine.append(first)
            first = first.left
        value = self.evaluate(first, env)
        for b in reversed(spine):
            value = self._apply(b, value, self.evaluate(b.right, env))
        return value

    def _apply(self, node: BinOp, left: Value, right: Value) -> Value:
        op = node.op
        if not isinstance(left, _Lin) and not isinstance(right, _Lin):
            a, b = left, right
            if op in "+-" and (isinstance(a, int) and isinstance(b, int)):
                return a + b if op == "+" else a - b  # index arithmetic such as t-1 stays integral
            x, y = _num(a, node.left), _num(b, node.right)
            if op == "+":
                r = x + y
            elif op == "-":
                r = x - y
            elif op == "*":
                r = x * y
            elif op == "/":
                if y == 0:
                    raise _EvalError(node, f"division by zero in '{unparse(node)}'")
                r = x / y
            else:
                if x == 0 and y < 0:
                    raise _EvalError(node, f"zero to a negative power in '{unparse(node)}'")
                try:
                    r = x**y
                except OverflowError:
                    r = INF
                if isinstance(r, complex):
                    raise _EvalError(node, f"'{unparse(node)}' is not a real number")
            if not math.isfinite(r) or abs(r) > 1e30:
                raise _EvalError(node, f"'{unparse(node)}' evaluates to a number too large ({r:g})")
            return r
        la = left if isinstance(left, _Lin) else None
        lb = right if isinstance(right, _Lin) else None
        if op in "+-":
            sign = 1.0 if op == "+" else -1.0
            const = (la.const if la else _num(left, node.left)) + sign * (
                lb.const if lb else _num(right, node.right)
            )
            terms = dict(la.terms) if la else {}
            if lb:
                for c, a in lb.terms.items():
                    terms[c] = terms.get(c, 0.0) + sign * a
            return _Lin(const, terms)
        if op == "*":
            if la is not None and lb is not None:
                la = _Lin(la.const, {c: a for c, a in la.terms.items() if a != 0.0})
                lb = _Lin(lb.const, {c: a for c, a in lb.terms.items() if a != 0.0})
                if not la.terms or not lb.terms:
                    k, lin = (la.const, lb) if not la.terms else (lb.const, la)
                    return _scale(lin, k)
                raise _EvalError(
                    node,
                    f"the term '{unparse(node)}' multiplies decision variables, "
                    "which makes the model nonlinear",
                    "linearise it (for a binary times a bounded variable, use big-M "
                    "constraints) or reformulate",
                    kind="nonlinear",
                )
            k = _num(right, node.right) if la is not None else _num(left, node.left)
            return _scale(la if la is not None else lb, k)  # type: ignore[arg-type]
        if op == "/":
            if lb is not None and lb.terms:
                raise _EvalError(
                    node,
                    f"the term '{unparse(node)}' divides by a decision variable, "
                    "which makes the model nonlinear",
                    "multiply both sides by the denominator if it is positive",
                    kind="nonlinear",
                )
            d = lb.const if lb is not None else _num(right, node.right)
            if d == 0:
                raise _EvalError(node, f"division by zero in '{unparse(node)}'")
            return _scale(la, 1.0 / d)  # type: ignore[arg-type]
        # power
        if lb is not None:
            raise _EvalError(node, f"'{unparse(node)}' has a variable exponent", kind="nonlinear")
        y = _num(right, node.right)
        assert la is not None
        if not la.terms:
            return _num(la.const**y, node)
        if y == 1:
            return la
        if y == 0:
            return 1.0
        raise _EvalError(
            node,
            f"the term '{unparse(node)}' raises a decision variable to a power, "
            "which makes the model nonlinear",
            "only linear models are supported; linearise it or fix the term",
            kind="nonlinear",
        )

    def _sum(self, node: Sum, env: dict[str, MemberValue]) -> Value:
        for b in node.binders:
            if b.var in env:
                raise _EvalError(
                    node,
                    f"index '{b.var}' is already bound outside this sum",
                    "use another index name",
                )
        total_const = 0.0
        terms: dict[int, float] = {}
        linear = False
        count = 0
        for local in self.bindings([(b.var, b.set) for b in node.binders], node.cond, env):
            count += 1
            if count > MAX_INSTANCES:
                raise _EvalError(node, f"sum has more than {MAX_INSTANCES} terms")
            v = self.evaluate(node.body, local)
            if isinstance(v, _Lin):
                linear = True
                total_const += v.const
                for c, a in v.terms.items():
                    terms[c] = terms.get(c, 0.0) + a
            else:
                total_const += _num(v, node.body)
        return _Lin(total_const, terms) if linear else total_const


def _scale(lin: _Lin, k: float) -> _Lin:
    if k == 0:
        return _Lin(0.0, {})
    return _Lin(lin.const * k, {c: a * k for c, a in lin.terms.items()})


def _member_key(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _num(v: Any, node: Node) -> float:
    if isinstance(v, bool):
        raise _EvalError(node, "a truth value is used as a number")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, _Lin):
        if v.terms:
            raise _EvalError(node, "expected a number")
        return v.const
    raise _EvalError(
        node,
        f"'{unparse(node)}' is the member {v!r}, not a number",
        "use members as indices, or give a parameter with the number",
    )


def _as_number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _as_float(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _compare(op: str, a: Any, b: Any, node: Node) -> bool:
    """Compare index values: numerically when both read as numbers ("10" > "9"), else as text."""
    x: Any = _as_float(a)
    y: Any = _as_float(b)
    if x is None or y is None:
        x, y = str(a), str(b)
    if op == "==":
        return bool(x == y)
    if op == "!=":
        return bool(x != y)
    if op == "<":
        return bool(x < y)
    if op == ">":
        return bool(x > y)
    if op == "<=":
        return bool(x <= y)
    return bool(x >= y)


# ---------------------------------------------------------------------------------------------
# Compilation


@dataclass(frozen=True, slots=True)
class ParsedConstraint:
    """A constraint family with its expression and condition parsed."""

    spec: ConstraintDef
    body: Compare
    cond: Node | None


def parse_all(
    model: FiveElementModel, diags: list[Diagnostic]
) -> tuple[Node | None, list[ParsedConstraint]]:
    """Parse every expression of the model, collecting syntax errors as diagnostics."""
    objective: Node | None = None
    try:
        objective = parse_expression(model.objective.expression)
    except ExprSyntaxError as e:
        diags.append(Diagnostic("objective.expression", str(e)))
    parsed: list[ParsedConstraint] = []
    for i, c in enumerate(model.constraints):
        where = f"constraints[{i}] ({c.name})"
        try:
            body = parse_constraint(c.expression)
            cond = parse_condition(c.condition) if c.condition else None
        except ExprSyntaxError as e:
            diags.append(Diagnostic(where, str(e)))
            continue
        parsed.append(ParsedConstraint(c, body, cond))
    return objective, parsed


def _classify(diags: list[tuple[str, Diagnostic]]) -> str:
    kinds = {k for k, _ in diags}
    if kinds == {"nonlinear"}:
        return "nonlinear"
    return "symbol" if "symbol" in kinds or "index" in kinds else next(iter(kinds))


def compile_model(model: FiveElementModel) -> LinearModel:
    """Check and expand ``model`` into a ``LinearModel``.

    Raises ``ArtifactError`` (kind ``parse``, ``symbol``, ``nonlinear`` or ``infeasible``) listing every
    problem found, each with its location and a hint.
    """
    diags: list[Diagnostic] = []
    scope = Scope(model, diags)
    objective_node, parsed = parse_all(model, diags)
    if diags:
        raise ArtifactError(
            "parse" if any("column" in d.message for d in diags) else "symbol",
            diags,
            f"the model has {len(diags)} problem(s) to fix",
        )

    found: list[tuple[str, Diagnostic]] = []

    def note(where: str, err: _EvalError) -> None:
        text = (
            f" in '{unparse(err.node)}'" if err.node is not None and err.kind != "nonlinear" else ""
        )
        found.append((err.kind, Diagnostic(where, err.message + text, err.hint)))

    columns: list[Column] = []
    column_index: dict[str, int] = {}
    for i, v in enumerate(model.variables):
        var = scope.vars.get(v.name)
        if var is None:
            continue
        try:
            _expand_var(scope, v, var, columns, column_index)
        except _EvalError as e:
            note(f"variables[{i}] ({v.name})", e)
    if len(columns) > MAX_INSTANCES:
        raise ArtifactError(
            "symbol",
            [
                Diagnostic(
                    "variables",
                    f"{len(columns)} variable instances exceed the limit of {MAX_INSTANCES}",
                )
            ],
        )

    objective: dict[int, float] = {}
    offset = 0.0
    if objective_node is not None:
        try:
            val = scope.evaluate(objective_node, {})
            if isinstance(val, _Lin):
                objective = {c: a for c, a in val.terms.items() if a != 0.0}
                offset = val.const
            else:
                offset = _num(val, objective_node)
        except _EvalError as e:
            note("objective", e)

    families: set[str] = set()
    for i, c in enumerate(model.constraints):
        if c.name in families:
            found.append(
                (
                    "symbol",
                    Diagnostic(
                        f"constraints[{i}]",
                        f"constraint name '{c.name}' is used twice",
                        "give each constraint family its own name",
                    ),
                )
            )
        families.add(c.name)

    rows: list[Row] = []
    dropped = 0
    for i, pc in enumerate(parsed):
        c = pc.spec
        base = f"constraints[{i}] ({c.name})"
        try:
            names = [b.name for b in c.index]
            if len(set(names)) != len(names):
                raise _EvalError(None, "the same index name is used twice in 'index'")
            for local in scope.bindings([(b.name, b.set) for b in c.index], pc.cond, {}):
                key = tuple(local[n] for n in names)
                label = instance_name(c.name, key)
                try:
                    row = _row(scope, pc, key, label)
                except _EvalError as e:
                    note(f"{base} at {label}" if key else base, e)
                    if len(found) > 20:
                        break
                    continue
                if row is None:
                    dropped += 1
                elif isinstance(row, Diagnostic):
                    found.append(("infeasible", row))
                else:
                    rows.append(row)
                    if len(rows) > MAX_INSTANCES:
                        raise _EvalError(None, f"more than {MAX_INSTANCES} constraint instances")
        except _EvalError as e:
            note(base, e)
        if len(found) > 20:
            break
    if found:
        diags = [d for _, d in found]
        kind = _classify(found)
        summary = (
            f"the model is nonlinear: {diags[0].message}"
            if kind == "nonlinear"
            else f"the model has {len(diags)} problem(s) to fix"
        )
        raise ArtifactError(kind, diags, summary)
    return LinearModel(
        model.name,
        model.objective.sense,
        columns,
        rows,
        objective,
        offset,
        model,
        dropped,
        column_index,
    )


def _bound(scope: Scope, value: float | str | None, default: float, what: str) -> float:
    """A variable bound: a number, or an expression in scalar parameters (``"capacity / 2"``)."""
    if value is None:
        return default
    if isinstance(value, int | float):
        if math.isnan(value):
            raise _EvalError(None, f"{what} bound is not a number")
        return float(value)
    node = parse_expression(value)
    if names_in(node) & scope.vars.keys():
        raise _EvalError(
            node,
            f"{what} bound '{value}' depends on decision variables",
            "bounds are numbers or scalar-parameter expressions; write a constraint instead",
        )
    v = scope.evaluate(node, {})
    if isinstance(v, _Lin):
        raise _EvalError(
            node,
            f"{what} bound '{value}' depends on decision variables",
            "bounds are numbers or scalar-parameter expressions; write a constraint instead",
        )
    return _num(v, node)


def _expand_var(
    scope: Scope, spec: VarDef, var: _Var, columns: list[Column], column_index: dict[str, int]
) -> None:
    sets = [scope.sets[s] for s in spec.index]
    # Checked before expanding: all variables together stay under the limit.
    if len(columns) + math.prod(len(s) for s in sets) > MAX_INSTANCES:
        raise _EvalError(
            None,
            f"the variables have more than {MAX_INSTANCES:,} instances in all",
            "use smaller sets",
            kind="size",
        )
    integer = spec.domain != "continuous"
    try:
        lo = _bound(scope, spec.lower, -INF, "lower")
        hi = _bound(scope, spec.upper, INF, "upper")
    except ExprSyntaxError as e:
        raise _EvalError(None, str(e)) from e
    if spec.domain == "binary":
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    if lo > hi:
        raise _EvalError(None, f"lower bound {lo:g} exceeds upper bound {hi:g}", "fix the bounds")
    for key in itertools.product(*sets):
        name = instance_name(spec.name, key)
        var.cols[key] = len(columns)
        column_index[name] = len(columns)
        columns.append(Column(name, spec.name, key, lo, hi, integer))


_TOL = 1e-9


def _row(scope: Scope, pc: ParsedConstraint, key: Key, label: str) -> Row | Diagnostic | None:
    env = {b.name: k for b, k in zip(pc.spec.index, key, strict=True)}
    body = pc.body
    vals = [scope.evaluate(op, env) for op in body.operands]
    if len(vals) == 2:
        diff = _sub(vals[0], vals[1])
        op = body.ops[0]
        lo, hi = (-INF, 0.0) if op == "<=" else (0.0, INF) if op == ">=" else (0.0, 0.0)
        lo, hi = (lo - diff.const, hi - diff.const)
        terms = diff.terms
    else:
        # lo <= mid <= hi (or hi >= mid >= lo): the outer operands must be constants
        outer = (vals[0], vals[2])
        if any(isinstance(v, _Lin) and v.terms for v in outer):
            raise _EvalError(
                body,
                "in a range constraint lo <= expr <= hi, lo and hi must not contain variables",
                "split it into two constraints",
            )
        a, b = (_num(v if not isinstance(v, _Lin) else v.const, body) for v in outer)
        lo_v, hi_v = (a, b) if body.ops[0] == "<=" else (b, a)
        mid = vals[1] if isinstance(vals[1], _Lin) else _Lin(_num(vals[1], body.operands[1]), {})
        lo, hi = lo_v - mid.const, hi_v - mid.const
        terms = mid.terms
    coeffs = {c: a for c, a in terms.items() if a != 0.0}
    text = pc.spec.expression
    if not coeffs:
        if lo <= _TOL * (1 + abs(lo)) and hi >= -_TOL * (1 + abs(hi)):
            return None
        return Diagnostic(
            f"constraint {label}",
            f"has no variables left and is false ({lo:g} <= 0 <= {hi:g} fails)",
            "check the parameters and the direction of the inequality",
        )
    return Row(label, pc.spec.name, key, lo, hi, coeffs, text, pc.spec.description)


def _sub(a: Value, b: Value) -> _Lin:
    la = a if isinstance(a, _Lin) else _Lin(_num(a, Num(0.0)), {})
    lb = b if isinstance(b, _Lin) else _Lin(_num(b, Num(0.0)), {})
    terms = dict(la.terms)
    for c, v in lb.terms.items():
        terms[c] = terms.get(c, 0.0) - v
    return _Lin(la.const - lb.const, terms)


# ---------------------------------------------------------------------------------------------
# Numeric re-evaluation (used by the verifier)


@dataclass(frozen=True, slots=True)
class Recomputed:
    """A model re-evaluated at given values: ``instances`` holds ``(name, description, lower, body,
    upper, scale)`` for every constraint instance (it holds when ``lower <= body <= upper``, ``body``
    being the left side minus the right side; ``scale`` is the larger side's magnitude, for
    tolerances), ``objective`` the objective's value."""

    instances: list[tuple[str, str, float, float, float, float]]
    objective: float


def recompute(
    model: FiveElementModel, columns: Sequence[Column], values: Sequence[float]
) -> Recomputed:
    """Re-evaluate every constraint and the objective of ``model`` at ``values`` (one per column).

    This walks the model's own expressions with fresh symbol tables, not the compiled rows, so a
    defect in compilation shows up as a violation.
    """
    diags: list[Diagnostic] = []
    scope = Scope(model, diags)
    if diags:
        raise ArtifactError("symbol", diags)
    for col_i, col in enumerate(columns):
        scope.vars[col.var].cols[col.key] = col_i
    scope.values = values
    objective_node, parsed = parse_all(model, diags)
    if diags or objective_node is None:
        raise ArtifactError("parse", diags)
    instances = []
    try:
        for pc in parsed:
            names = [b.name for b in pc.spec.index]
            for local in scope.bindings([(b.name, b.set) for b in pc.spec.index], pc.cond, {}):
                vals = [_num(scope.evaluate(op, local), op) for op in pc.body.operands]
                label = instance_name(pc.spec.name, tuple(local[n] for n in names))
                scale = max(abs(v) for v in vals)
                if len(vals) == 2:
                    op = pc.body.ops[0]
                    lo, hi = (-INF, 0.0) if op == "<=" else (0.0, INF) if op == ">=" else (0.0, 0.0)
                    instances.append((label, pc.spec.description, lo, vals[0] - vals[1], hi, scale))
                else:
                    lo_v, hi_v = (
                        (vals[0], vals[2]) if pc.body.ops[0] == "<=" else (vals[2], vals[0])
                    )
                    instances.append((label, pc.spec.description, lo_v, vals[1], hi_v, scale))
        objective = _num(scope.evaluate(objective_node, {}), objective_node)
    except _EvalError as e:
        raise ArtifactError("verification", [Diagnostic("re-evaluation", e.message)]) from e
    return Recomputed(instances, objective)
