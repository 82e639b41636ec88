"""The expression parser (formalizers.milp.expr) and the meaning checks of compile_model."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest

from agent.errors import ArtifactError
from formalizers.milp.expr import (
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_LENGTH,
    Binder,
    BinOp,
    Compare,
    ExprSyntaxError,
    Num,
    Ref,
    Str,
    Sum,
    parse_condition,
    parse_constraint,
    parse_expression,
    unparse,
)
from formalizers.milp.linear import compile_model
from formalizers.milp.model import FiveElementModel


def shape(node: Any) -> Any:
    """A node as nested tuples without source positions, so two parses of different text compare."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (type(node).__name__,) + tuple(
            shape(getattr(node, f.name)) for f in dataclasses.fields(node) if f.name != "pos"
        )
    if isinstance(node, tuple):
        return tuple(shape(n) for n in node)
    return node


# ---------------------------------------------------------------------------------------------
# Valid text parses, to the tree its canonical (fully parenthesised) text describes

VALID_EXPRESSIONS = [
    ("x", "x"),
    ("a + b * c", "(a + (b * c))"),
    ("a - b - c", "((a - b) - c)"),
    ("3 * (x + y) / 2", "((3 * (x + y)) / 2)"),
    ("-x + +y", "(-x + y)"),
    ("- -x", "--x"),
    ("x[t - 1]", "x[(t - 1)]"),
    ("x[t-1, 'a']", "x[(t - 1), 'a']"),
    ("x['a'] + y[\"b\"]", "(x['a'] + y['b'])"),
    ("2 ^ 3", "(2 ^ 3)"),
    ("2 ** 3", "(2 ^ 3)"),
    ("x ^ -2", "(x ^ -2)"),
    ("-x ^ 2", "-(x ^ 2)"),
    ("1.5e3 * x + .5 * y", "((1500 * x) + (0.5 * y))"),
    ("sum(x[i] for i in I)", "sum(x[i] for i in I)"),
    (
        "sum(c[i, j] * x[i, j] for i in I for j in J)",
        "sum((c[i, j] * x[i, j]) for i in I, j in J)",
    ),
    (
        "sum(c[i, j] * x[i, j] for i in I, j in J if i != j)",
        "sum((c[i, j] * x[i, j]) for i in I, j in J if i != j)",
    ),
    (
        "sum(x[i, t] for i in I for t in T if t > 1 and d[i] > 0)",
        "sum(x[i, t] for i in I, t in T if (t > 1) and (d[i] > 0))",
    ),
    (
        "sum(sum(x[i, j] for j in J if j in K) for i in I)",
        "sum(sum(x[i, j] for j in J if j in K) for i in I)",
    ),
    ("sum(x[i] for i in I if not (i == 'a' or i == 'b'))", None),
]


@pytest.mark.parametrize(("text", "canonical"), VALID_EXPRESSIONS)
def test_valid_expression_parses(text: str, canonical: str | None) -> None:
    node = parse_expression(text)
    if canonical is not None:
        assert unparse(node) == canonical
    # The canonical text means the same tree.
    assert shape(parse_expression(unparse(node))) == shape(node)


def test_sum_with_binders_and_filter_structure() -> None:
    node = parse_expression("sum(c[i, j] * x[i, j] for i in I, j in J if i != j and c[i, j] > 0)")
    assert isinstance(node, Sum)
    assert [(b.var, b.set) for b in node.binders] == [("i", "I"), ("j", "J")]
    assert all(isinstance(b, Binder) for b in node.binders)
    assert isinstance(node.body, BinOp) and node.body.op == "*"
    assert node.cond is not None
    assert unparse(node.cond) == "(i != j) and (c[i, j] > 0)"


def test_string_and_arithmetic_indices() -> None:
    node = parse_expression("x['a', t - 1]")
    assert isinstance(node, Ref) and node.id == "x"
    first, second = node.indices
    assert first == Str("a", pos=2)
    assert isinstance(second, BinOp) and second.op == "-"
    assert shape(second.right) == ("Num", 1.0)


def test_constant_exponent_is_a_number_node() -> None:
    node = parse_expression("2 ^ 3")
    assert isinstance(node, BinOp) and node.op == "^"
    assert node.right == Num(3.0, pos=4)
    assert parse_expression(f"x ^ {MAX_EXPONENT}") is not None


VALID_CONSTRAINTS = [
    ("x <= 5", ("<=",), "x <= 5"),
    ("x >= y + 1", (">=",), "x >= (y + 1)"),
    ("x == 5", ("==",), "x == 5"),
    ("x = 5", ("==",), "x == 5"),
    ("0 <= x <= 5", ("<=", "<="), "0 <= x <= 5"),
    ("5 >= x >= 0", (">=", ">="), "5 >= x >= 0"),
    ("sum(x[i] for i in I) <= cap", ("<=",), "sum(x[i] for i in I) <= cap"),
    ("x[t] - x[t-1] <= ramp", ("<=",), "(x[t] - x[(t - 1)]) <= ramp"),
    (
        "lo[i] <= sum(y[i, j] for j in J if j != i) <= hi[i]",
        ("<=", "<="),
        "lo[i] <= sum(y[i, j] for j in J if j != i) <= hi[i]",
    ),
]


@pytest.mark.parametrize(("text", "ops", "canonical"), VALID_CONSTRAINTS)
def test_valid_constraint_parses(text: str, ops: tuple[str, ...], canonical: str) -> None:
    node = parse_constraint(text)
    assert isinstance(node, Compare)
    assert node.ops == ops
    assert len(node.operands) == len(ops) + 1
    assert unparse(node) == canonical


VALID_CONDITIONS = [
    ("i != j", "i != j"),
    ("t > 1", "t > 1"),
    ("t = 1", "t == 1"),
    ("i in S", "i in S"),
    ("not i in S", "not (i in S)"),
    ("t > 1 and d[i] > 0", "(t > 1) and (d[i] > 0)"),
    ("i == 'a' or i == 'b' and t < 3", "(i == 'a') or ((i == 'b') and (t < 3))"),
    ("(i == 'a' or i == 'b') and t < 3", "((i == 'a') or (i == 'b')) and (t < 3)"),
    ("(t + 1) * 2 > j", "((t + 1) * 2) > j"),
    ("not not t >= 2", "not (not (t >= 2))"),
]


@pytest.mark.parametrize(("text", "canonical"), VALID_CONDITIONS)
def test_valid_condition_parses(text: str, canonical: str) -> None:
    node = parse_condition(text)
    assert unparse(node) == canonical


# ---------------------------------------------------------------------------------------------
# Hostile or malformed text is rejected, with a reason

Parse = Callable[[str], Any]

REJECTED: list[tuple[str, Parse, str, str]] = [
    # (id, parser, text, a word of the message)
    ("dunder-call", parse_expression, "__import__('os')", "double underscores"),
    ("attribute", parse_expression, "x.__class__", "attribute access"),
    ("method-call", parse_expression, "os.system('ls')", "attribute access"),
    ("lambda", parse_expression, "lambda: 1", "lambdas"),
    ("lambda-call", parse_expression, "(lambda x: x)(1)", "lambdas"),
    ("import", parse_expression, "import os", "imports"),
    ("def", parse_expression, "def f", "definitions"),
    ("tower-exponent", parse_expression, "10**10**10", "chained exponents"),
    ("huge-exponent", parse_expression, "2 ** 1000", "too large"),
    ("huge-negative-exponent", parse_expression, "2 ^ -17", "too large"),
    ("variable-exponent", parse_expression, "2 ^ x", "exponent must be a number"),
    ("huge-number", parse_expression, "1e400 * x", "too large"),
    ("call", parse_expression, "abs(x)", "calls are not allowed"),
    ("call-after-paren", parse_expression, "(x)(1)", "calls are not allowed"),
    ("deep-parens", parse_expression, "(" * 5000 + "x" + ")" * 5000, "nested too deeply"),
    ("deep-brackets", parse_expression, "x[" * 5000 + "1" + "]" * 5000, "nested too deeply"),
    ("deep-unary", parse_expression, "-" * 5000 + "x", "nested too deeply"),
    ("deep-sum", parse_expression, "sum(" * 200 + "x", "nested too deeply"),
    ("deep-not", parse_condition, "not " * 200 + "i > 0", "nested too deeply"),
    ("unbalanced-bracket", parse_expression, "x[", "ended early"),
    ("unclosed-paren", parse_expression, "(x + 1", "expected ')'"),
    ("stray-close", parse_expression, "x + 1)", "unexpected ')'"),
    ("empty", parse_expression, "", "empty"),
    ("blank", parse_expression, "   \n\t", "empty"),
    ("too-long", parse_expression, "x" * (MAX_LENGTH + 1), "too long"),
    ("braces", parse_expression, "{x}", "braces"),
    ("set-comprehension", parse_expression, "sum({x[i] for i in I})", "braces"),
    ("sum-without-for", parse_expression, "sum(x[i])", "needs at least one 'for"),
    ("sum-unclosed", parse_expression, "sum(x[i] for i in I", "to close sum("),
    ("sum-rebinds", parse_expression, "sum(x[i, i] for i in I, i in J)", "bound twice"),
    ("binder-not-name", parse_expression, "sum(x for 1 in I)", "index name"),
    ("binder-without-set", parse_expression, "sum(x[i] for i in)", "set name"),
    ("dunder-name", parse_expression, "__class__", "double underscores"),
    ("dunder-suffix", parse_expression, "x__ + 1", "double underscores"),
    ("dunder-index", parse_expression, "x[__builtins__]", "double underscores"),
    ("unterminated-string", parse_expression, "x['a]", "unterminated"),
    ("semicolon", parse_expression, "x; y", "unexpected character"),
    ("keyword-out-of-place", parse_expression, "x + in", "keyword 'in'"),
    ("slice", parse_expression, "x[1:2]", "expected ']'"),
    ("comparison-in-expression", parse_expression, "x <= 1", "unexpected '<='"),
    ("constraint-dangling-lt", parse_constraint, "x <", "not allowed in a constraint"),
    ("constraint-dangling-le", parse_constraint, "x <=", "ended early"),
    ("constraint-strict", parse_constraint, "x < 1", "not allowed in a constraint"),
    ("constraint-not-equal", parse_constraint, "x != 1", "not allowed in a constraint"),
    ("constraint-three-chained", parse_constraint, "0 <= x <= 5 <= 6", "at most two"),
    ("constraint-mixed-chain", parse_constraint, "0 <= x >= 5", "chained comparison"),
    ("constraint-equal-chain", parse_constraint, "x == y == z", "chained comparison"),
    ("constraint-no-comparison", parse_constraint, "x + y", "needs a comparison"),
    ("condition-bare-name", parse_condition, "i", "a condition must compare"),
    ("condition-trailing", parse_condition, "i > 0 j", "unexpected 'j'"),
    ("condition-in-not-set", parse_condition, "i in 3", "set name"),
]


@pytest.mark.parametrize(
    ("parse", "text", "word"),
    [pytest.param(p, t, w, id=i) for i, p, t, w in REJECTED],
)
def test_rejected_with_reason(parse: Parse, text: str, word: str) -> None:
    with pytest.raises(ExprSyntaxError) as info:
        parse(text)
    err = info.value
    assert word in err.message
    assert isinstance(err, ValueError)
    assert 0 <= err.pos <= len(text)
    assert f"column {err.pos + 1}" in str(err)


def test_nesting_limit_is_exact() -> None:
    ok = "(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH
    assert unparse(parse_expression(ok)) == "x"
    too_deep = "(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(ExprSyntaxError, match="nested too deeply"):
        parse_expression(too_deep)


def test_longest_accepted_text() -> None:
    text = "x +" + " " * (MAX_LENGTH - 4) + "y"
    assert len(text) == MAX_LENGTH
    assert unparse(parse_expression(text)) == "(x + y)"


def test_trailing_blanks_tokenize_in_linear_time() -> None:
    text = "z" + " " * 5_000  # ~1 ms when linear, ~1.2 s with the quadratic tokenizer
    start = time.perf_counter()
    node = parse_expression(text)
    elapsed = time.perf_counter() - start
    assert unparse(node) == "z"
    assert elapsed < 0.25


def test_non_text_is_rejected() -> None:
    with pytest.raises(ExprSyntaxError, match="must be text"):
        parse_expression(42)  # type: ignore[arg-type]


def test_error_points_at_the_offending_character() -> None:
    with pytest.raises(ExprSyntaxError) as info:
        parse_expression("3 * x + y.real")
    assert info.value.pos == 9
    assert "column 10" in str(info.value)


# ---------------------------------------------------------------------------------------------
# unparse is a faithful printer

ROUND_TRIP: list[Any] = [
    (parse_expression, "a + b * c - d / e"),
    (parse_expression, "-(a + b) * -c"),
    (parse_expression, "2 ^ 3 + x ^ -1"),
    (parse_expression, "x[t - 1, 'a'] + y[\"b\"]"),
    (
        parse_expression,
        "sum(c[i, j] * x[i, j] for i in I for j in J if i != j and not (j in K) or c[i, j] >= 2)",
    ),
    (parse_expression, "sum(sum(x[i, j] for j in J) for i in I if (i + 1) * 2 > 3)"),
    (parse_expression, "1e-07 * x + 12345678901234567890 * y + 0.1"),
    (parse_constraint, "0 <= x <= 5"),
    (parse_constraint, "cap[i] >= sum(x[i, j] for j in J)"),
    (parse_condition, "not (i in S) and (t > 1 or t == 'last')"),
    pytest.param(
        parse_expression,
        "x['\t']",
        id="tab-in-string",
    ),
]


@pytest.mark.parametrize(("parse", "text"), ROUND_TRIP)
def test_unparse_round_trips(parse: Parse, text: str) -> None:
    node = parse(text)
    again = parse(unparse(node))
    assert shape(again) == shape(node)
    assert unparse(again) == unparse(node)


# ---------------------------------------------------------------------------------------------
# Meaning: compile_model reports what is wrong, in terms of the model


def model(
    *,
    objective: str = "x",
    constraints: list[dict[str, Any]] | None = None,
    variables: list[dict[str, Any]] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    sets: list[dict[str, Any]] | None = None,
    sense: str = "maximize",
) -> FiveElementModel:
    return FiveElementModel.model_validate(
        {
            "sets": sets or [],
            "parameters": parameters or [],
            "variables": variables or [{"name": "x", "upper": 10}, {"name": "y", "upper": 10}],
            "objective": {"sense": sense, "expression": objective},
            "constraints": constraints or [],
        }
    )


def compile_error(m: FiveElementModel) -> ArtifactError:
    with pytest.raises(ArtifactError) as info:
        compile_model(m)
    return info.value


def test_undeclared_parameter_is_named() -> None:
    err = compile_error(
        model(
            sets=[{"name": "I", "members": ["a", "b"]}],
            variables=[{"name": "x", "index": ["I"], "upper": 5}],
            objective="sum(cost[i] * x[i] for i in I)",
        )
    )
    assert err.kind == "symbol"
    feedback = err.feedback()
    assert "'cost' is not declared" in feedback
    assert "objective" in feedback
    assert any("cost" in d.message for d in err.diagnostics)


@pytest.mark.parametrize(
    ("where", "text", "term", "word"),
    [
        ("objective", "x * y", "(x * y)", "multiplies decision variables"),
        ("objective", "3 * x * (y + 1)", "((3 * x) * (y + 1))", "multiplies decision variables"),
        ("objective", "x ^ 2", "(x ^ 2)", "raises a decision variable to a power"),
        ("objective", "10 / x", "(10 / x)", "divides by a decision variable"),
        ("objective", "y / (x - 1)", "(y / (x - 1))", "divides by a decision variable"),
        ("constraint", "x * y <= 4", "(x * y)", "multiplies decision variables"),
        ("constraint", "x ^ 2 + y >= 1", "(x ^ 2)", "raises a decision variable to a power"),
    ],
)
def test_nonlinear_term_is_named(where: str, text: str, term: str, word: str) -> None:
    if where == "objective":
        m = model(objective=text)
    else:
        m = model(constraints=[{"name": "c", "expression": text}])
    err = compile_error(m)
    assert err.kind == "nonlinear"
    feedback = err.feedback()
    assert "nonlinear" in feedback
    assert term in feedback
    assert word in feedback
    assert "x" in feedback and "y" in feedback


def test_linear_uses_of_constants_compile() -> None:
    lm = compile_model(
        model(
            parameters=[{"name": "k", "value": 4}],
            objective="2 ^ 3 * x + y / k + k * x ^ 1 + x ^ 0",
        )
    )
    by_name = {lm.columns[c].name: a for c, a in lm.objective.items()}
    assert by_name == {"x": 12.0, "y": 0.25}
    assert lm.offset == 1.0


def test_wrong_number_of_indices_is_reported() -> None:
    err = compile_error(
        model(
            sets=[{"name": "I", "members": [1, 2]}],
            variables=[{"name": "x", "index": ["I"], "upper": 5}],
            objective="sum(x[i, i] for i in I)",
        )
    )
    assert err.kind == "symbol"
    assert "variable 'x' takes 1 index (I), given 2" in err.feedback()


def test_missing_indices_are_reported() -> None:
    err = compile_error(
        model(
            sets=[{"name": "I", "members": [1, 2]}],
            variables=[{"name": "x", "index": ["I"], "upper": 5}],
            objective="x",
        )
    )
    assert err.kind == "symbol"
    assert "indexed by I and needs indices" in err.feedback()


RAMP = {
    "sets": [{"name": "T", "members": [1, 2, 3]}],
    "variables": [{"name": "x", "index": ["T"], "upper": 5}],
    "objective": "sum(x[t] for t in T)",
}


def test_index_out_of_set_is_reported() -> None:
    err = compile_error(
        model(
            **RAMP,
            constraints=[{"name": "ramp", "index": "t in T", "expression": "x[t] - x[t - 1] <= 1"}],
        )
    )
    assert err.kind == "symbol"
    feedback = err.feedback()
    assert "index 0 of x is not a member of set T" in feedback
    assert "ramp[1]" in feedback
    assert "t > 1" in feedback  # the hint says how to keep the index inside the set


def test_index_kept_in_set_by_a_condition_compiles() -> None:
    lm = compile_model(
        model(
            **RAMP,
            constraints=[
                {
                    "name": "ramp",
                    "index": "t in T",
                    "condition": "t > 1",
                    "expression": "x[t] - x[t - 1] <= 1",
                }
            ],
        )
    )
    assert [r.name for r in lm.rows] == ["ramp[2]", "ramp[3]"]
    assert all(r.upper == 1 and len(r.coeffs) == 2 for r in lm.rows)


def test_constant_false_constraint_is_reported() -> None:
    err = compile_error(
        model(
            parameters=[{"name": "demand", "value": 1}, {"name": "stock", "value": 0}],
            constraints=[{"name": "cover", "expression": "stock >= demand"}],
        )
    )
    assert err.kind == "infeasible"
    feedback = err.feedback()
    assert "constraint cover" in feedback
    assert "no variables left and is false" in feedback


def test_constant_true_constraint_is_dropped() -> None:
    lm = compile_model(
        model(
            parameters=[{"name": "demand", "value": 1}, {"name": "stock", "value": 3}],
            constraints=[{"name": "cover", "expression": "stock >= demand"}],
        )
    )
    assert lm.rows == []
    assert lm.dropped_rows == 1


def test_syntax_error_in_model_is_kind_parse() -> None:
    err = compile_error(model(constraints=[{"name": "c", "expression": "x.__class__ <= 1"}]))
    assert err.kind == "parse"
    assert "constraints[0] (c)" in err.feedback()
    assert "attribute access" in err.feedback()


def test_condition_on_variables_is_reported() -> None:
    err = compile_error(
        model(
            sets=[{"name": "I", "members": [1, 2]}],
            variables=[{"name": "x", "index": ["I"], "upper": 5}],
            objective="sum(x[i] for i in I if x[i] > 0)",
        )
    )
    assert err.kind == "symbol"
    assert "cannot depend on decision variables" in err.feedback()


def test_long_flat_sum_compiles() -> None:
    text = " + ".join(["x"] * 600)  # 2,397 characters, far under MAX_LENGTH
    lm = compile_model(model(objective=text))
    assert lm.objective == {0: 600.0}


@pytest.mark.parametrize(
    ("variables", "objective", "message"),
    [
        pytest.param(
            [{"name": "x", "lower": 5, "upper": 1}],
            "x",
            "lower bound 5 exceeds upper bound 1",
            id="inverted-bounds",
        ),
        pytest.param(
            [{"name": "x", "upper": "y"}, {"name": "y", "upper": 1}],
            "x + y",
            "depends on decision variables",
            id="bound-names-later-variable",
        ),
        pytest.param(
            [{"name": "x", "upper": "missing"}],
            "x",
            "'missing' is not declared",
            id="bound-names-undeclared",
        ),
    ],
)
def test_bad_bounds_of_a_used_variable_are_reported(
    variables: list[dict[str, Any]], objective: str, message: str
) -> None:
    err = compile_error(model(variables=variables, objective=objective))
    assert err.kind == "symbol"
    assert message in err.feedback()


def test_bad_bounds_of_an_unused_variable_are_reported() -> None:
    err = compile_error(
        model(variables=[{"name": "x", "lower": 5, "upper": 1}, {"name": "y"}], objective="y")
    )
    assert err.kind == "symbol"
    assert "variables[0] (x): lower bound 5 exceeds upper bound 1" in err.feedback()
