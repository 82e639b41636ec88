"""Formal optimization inputs given directly: five-element JSON or YAML, CPLEX LP and MPS files.

LP and MPS files are read with HiGHS's own reader; ``load_highspy`` loads highspy quietly for that
reader and for ``solvers.highs`` (the solver imports the reader, never the reverse). The
five-element schema's validation is ``formalizers.milp.model.five_element_from_data``."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
import tempfile
import threading
from typing import TYPE_CHECKING, Any

from agent.errors import ArtifactError, Diagnostic, InputError, SolverFault
from formalizers.base import Artifact

if TYPE_CHECKING:  # pydantic and PyYAML load when a five-element model is read, not for LP/MPS;
    # the compiler when a model is read (the router asks every file whether it is one of ours)
    from formalizers.milp.linear import LinearModel
    from formalizers.milp.model import FiveElementModel


def read_five_element(text: str, yaml_ok: bool = True) -> FiveElementModel:
    """Parse five-element JSON (or YAML) text."""
    from formalizers.milp.model import five_element_from_data

    if not yaml_ok:
        return five_element_from_data(read_json(text))
    return five_element_from_data(safe_yaml(text))


def read_json(text: str) -> Any:
    """Parse JSON; ``ArtifactError("parse")`` located by line and column when it does not."""
    try:
        return json.loads(text)
    except RecursionError as e:
        raise ArtifactError("parse", [Diagnostic("JSON", "nested too deeply")]) from e
    except json.JSONDecodeError as je:
        raise json_error(je) from je


def json_error(je: json.JSONDecodeError) -> ArtifactError:
    where = f"line {je.lineno}, column {je.colno}"
    return ArtifactError(
        "parse", [Diagnostic(where, je.msg)], f"the JSON does not parse: {je.msg} at {where}"
    )


@functools.cache
def _no_alias_loader() -> Any:
    """A YAML loader without anchors and aliases: a few hundred bytes of aliases can expand to
    gigabytes. (Built on first use: PyYAML loads only when YAML is read.)"""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.YAMLError(f"YAML aliases (*{event.anchor}) are not accepted")
            return super().compose_node(parent, index)

    return NoAliasLoader


def safe_yaml(text: str) -> Any:
    """Parse JSON or YAML (no aliases, bounded nesting); ``ArtifactError("parse")`` located by
    line and column when it fails. Text that starts like JSON (``{`` or ``[``) is read as JSON
    first; when neither JSON nor YAML (whose flow style also starts so, and which forgives a
    trailing comma) reads it, the JSON error is the one reported."""
    import yaml

    bad_json: json.JSONDecodeError | None = None
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except RecursionError as e:
            raise ArtifactError("parse", [Diagnostic("JSON", "nested too deeply")]) from e
        except json.JSONDecodeError as je:
            bad_json = je
    try:
        return yaml.load(text, Loader=_no_alias_loader())
    except RecursionError as e:
        raise ArtifactError("parse", [Diagnostic("YAML", "nested too deeply")]) from e
    except yaml.YAMLError as ye:
        if bad_json is not None:
            raise json_error(bad_json) from ye
        raise yaml_error(ye) from ye


def yaml_error(ye: Exception) -> ArtifactError:
    """A PyYAML error as a located diagnostic (``line 3, column 5: mapping values are not
    allowed here``)."""
    mark = getattr(ye, "problem_mark", None) or getattr(ye, "context_mark", None)
    problem = getattr(ye, "problem", None) or str(ye).splitlines()[0]
    context = getattr(ye, "context", None)
    what = f"{problem} ({context})" if context else str(problem)
    if mark is None:
        return ArtifactError(
            "parse", [Diagnostic("YAML", what)], f"the YAML does not parse: {what}"
        )
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    return ArtifactError(
        "parse", [Diagnostic(where, what)], f"the YAML does not parse: {what} at {where}"
    )


def looks_like_five_element(text: str) -> bool:
    """A JSON object with ``variables`` and ``objective`` keys, or YAML that starts with such keys."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except (json.JSONDecodeError, RecursionError):
            return "variables" in stripped and "objective" in stripped  # broken JSON: still a model
        return isinstance(data, dict) and "variables" in data and "objective" in data
    keys = set(re.findall(r"^([A-Za-z_]+):", stripped, re.MULTILINE))
    return {"variables", "objective"} <= keys


_LP_OBJECTIVE = re.compile(r"(?:maximi[sz]e|maximum|max|minimi[sz]e|minimum|min)(?:\s|$)")
_LP_SECTION = re.compile(
    r"^[ \t]*(?:subject[ \t]+to|such[ \t]+that|s\.t\.|st\.?)(?:[ \t:]|$)|^[ \t]*end[ \t]*$",
    re.MULTILINE,
)


def looks_like_cplex_lp(text: str) -> bool:
    """CPLEX LP: the first line that is not a ``\\`` comment is an objective section keyword
    (``Maximize``, ``Minimize``, ``Max``...) and a later line starts a ``Subject To`` section (or
    ``st``, ``s.t.``, ``such that``) or is ``End``.

    The keywords must stand alone: a clingo program (also ``.lp``) that starts with ``max_load(10).``,
    ``min :- a.`` or ``% max ...`` is not an LP file.
    """
    low = text[:200_000].lower()
    first = next(
        (s for s in (line.strip() for line in low[:4000].splitlines()) if s and s[0] != "\\"), ""
    )
    first = first.split("\\", 1)[0].strip()  # a trailing CPLEX comment
    if not _LP_OBJECTIVE.match(first) or ":-" in first:
        return False
    return bool(_LP_SECTION.search(low))


def looks_like_mps(text: str) -> bool:
    tokens = {
        line.split()[0].upper()
        for line in text.splitlines()[:200]
        if line.strip() and not line.startswith((" ", "\t", "*"))
    }
    return {"ROWS", "COLUMNS"} <= tokens


MPS_VALUE_BOUNDS = frozenset({"UP", "LO", "FX", "LI", "UI", "SC"})
"""BOUNDS types whose line ends in a value."""


def _mps_number_fields(section: str, fields: list[str]) -> list[int]:
    """Which fields of an MPS data line are numbers: COLUMNS ``col row value [row value]``; RHS
    and RANGES the same with a set name that free MPS may leave out; BOUNDS ``type [set] col
    value`` for the types that take a value. No field for a line of another length (fixed MPS
    allows names with blanks): HiGHS's reader judges those."""
    n = len(fields)
    if section == "COLUMNS" and n in (3, 5):
        return [2, 4]
    if section in ("RHS", "RANGES") and 2 <= n <= 5:
        return [2, 4] if n % 2 else [1, 3]
    if section == "BOUNDS" and fields[0].upper() in MPS_VALUE_BOUNDS and n in (3, 4):
        return [n - 1]
    return []


def check_mps_numbers(text: str) -> None:
    """``ArtifactError`` naming the line of the first MPS value that is not a number: HiGHS's
    reader takes ``notanumber`` as 0 and would solve a model the file does not state."""
    section = ""
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("*"):
            continue
        fields = line.split()
        if not line[0].isspace():
            section = fields[0].upper()
            continue
        if section == "COLUMNS" and "'MARKER'" in (f.upper() for f in fields):
            continue
        for i in _mps_number_fields(section, fields):
            if i >= len(fields):
                continue
            try:
                float(fields[i])
            except ValueError:
                raise ArtifactError(
                    "parse",
                    [Diagnostic(f"line {n}", f"{fields[i]!r} is not a number", f"in {section}")],
                    f"the MPS file has a value that is not a number at line {n}: {fields[i]!r}",
                ) from None


HIGHS_INF = 1e20
"""HiGHS reads any number of at least this size as infinite (its ``infinite_cost`` and
``infinite_bound`` defaults)."""


_banner_lock = threading.Lock()
_banner_done = False


def load_highspy() -> Any:
    """The ``highspy`` module, its start-up banner silenced once (the LP/MPS reader here and
    ``solvers.highs`` both make HiGHS instances); ``SolverFault`` when it is not installed."""
    global _banner_done
    try:
        import highspy
    except ImportError as e:  # pragma: no cover - highspy is a core dependency
        raise SolverFault(f"HiGHS is not installed ({e}); run `pip install highspy`") from e
    if not _banner_done:
        # HiGHS writes a banner to file descriptor 1 when the first instance is made, before any
        # option can silence it; it would corrupt `--json` output, so it goes to /dev/null once.
        with _banner_lock:
            if not _banner_done:
                sys.stdout.flush()
                saved = os.dup(1)
                try:
                    with open(os.devnull, "wb") as null:
                        os.dup2(null.fileno(), 1)
                        highspy.Highs()
                finally:
                    os.dup2(saved, 1)
                    os.close(saved)
                _banner_done = True
    return highspy


def read_with_highs(text: str, suffix: str) -> LinearModel:
    """Read an LP or MPS file with HiGHS's reader into a ``LinearModel`` (names kept)."""
    from formalizers.milp.linear import Column, LinearModel, Row

    hs = load_highspy()
    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        h = hs.Highs()
        h.setOptionValue("output_flag", False)
        status = h.readModel(path)
        if status == hs.HighsStatus.kError:
            raise ArtifactError(
                "parse",
                [Diagnostic(f"{suffix[1:].upper()} file", "HiGHS could not read it")],
                f"the {suffix[1:].upper()} file does not parse",
            )
        lp = h.getLp()
        hessian_dim = h.getModel().hessian_.dim_
    finally:
        os.unlink(path)
    if hessian_dim:
        raise ArtifactError(
            "nonlinear",
            [Diagnostic(f"{suffix[1:].upper()} file", "the objective has quadratic terms")],
            "quadratic objectives are not supported; only linear and mixed-integer linear models are",
        )
    n, m = lp.num_col_, lp.num_row_
    col_names = list(lp.col_names_) or [f"x{i}" for i in range(n)]
    row_names = list(lp.row_names_) or [f"r{i}" for i in range(m)]
    integrality = list(lp.integrality_) if len(lp.integrality_) else []
    int_kinds = {hs.HighsVarType.kInteger, hs.HighsVarType.kImplicitInteger}
    special = [
        col_names[i]
        for i, t in enumerate(integrality)
        if t not in int_kinds and t != hs.HighsVarType.kContinuous
    ]
    if special:
        raise ArtifactError(
            "unsupported",
            [Diagnostic(f"column {c}", "is semi-continuous or semi-integer") for c in special[:10]],
            "semi-continuous and semi-integer variables are not supported",
        )
    # Each read of an ``lp`` attribute copies the whole vector out of HiGHS: read each once.
    col_lower, col_upper = list(lp.col_lower_), list(lp.col_upper_)
    row_lower, row_upper = list(lp.row_lower_), list(lp.row_upper_)
    columns = [
        Column(
            col_names[i],
            col_names[i],
            (),
            _f(col_lower[i]),
            _f(col_upper[i]),
            bool(integrality) and integrality[i] in int_kinds,
        )
        for i in range(n)
    ]
    # HiGHS stores the matrix column-wise; gather it by rows.
    a = lp.a_matrix_
    starts, index, value = list(a.start_), list(a.index_), list(a.value_)
    row_coeffs: list[dict[int, float]] = [{} for _ in range(m)]
    if a.format_ == hs.MatrixFormat.kColwise:
        for c in range(n):
            for k in range(starts[c], starts[c + 1]):
                row_coeffs[index[k]][c] = float(value[k])
    else:
        for r in range(m):
            for k in range(starts[r], starts[r + 1]):
                row_coeffs[r][index[k]] = float(value[k])
    rows = []
    for r in range(m):
        lo, hi = _f(row_lower[r]), _f(row_upper[r])
        rows.append(
            Row(
                row_names[r],
                row_names[r],
                (),
                lo,
                hi,
                row_coeffs[r],
                _row_text(row_coeffs[r], lo, hi, col_names),
                "",
            )
        )
    objective = {i: float(c) for i, c in enumerate(lp.col_cost_) if c != 0}
    huge = [
        Diagnostic("objective", f"the coefficient of {col_names[i]} is {c:g}")
        for i, c in objective.items()
        if not abs(c) < HIGHS_INF
    ] + [
        Diagnostic(f"row {rows[r].name}", f"the coefficient of {col_names[c]} is {v:g}")
        for r in range(m)
        for c, v in row_coeffs[r].items()
        if not abs(v) < HIGHS_INF
    ]
    if huge or not abs(lp.offset_) < HIGHS_INF:
        raise ArtifactError(
            "schema",
            huge[:10] or [Diagnostic("objective", f"the constant is {lp.offset_:g}")],
            f"a coefficient of the {suffix[1:].upper()} file is infinite or at least {HIGHS_INF:g} "
            "(HiGHS's infinity): no solver can use it",
        )
    sense = "maximize" if lp.sense_ == hs.ObjSense.kMaximize else "minimize"
    return LinearModel(
        lp.model_name_ or "model",
        sense,
        columns,
        rows,
        objective,
        float(lp.offset_),
        None,
        0,
        {c.name: i for i, c in enumerate(columns)},
    )


def _f(x: float) -> float:
    return math.inf if x >= 1e30 else (-math.inf if x <= -1e30 else float(x))


def _row_text(coeffs: dict[int, float], lo: float, hi: float, names: list[str]) -> str:
    terms = " ".join(
        f"{'+' if a >= 0 else '-'} {abs(a):g} {names[c]}" for c, a in coeffs.items()
    ).lstrip("+ ")
    if lo == hi:
        return f"{terms} = {lo:g}"
    if lo == -math.inf:
        return f"{terms} <= {hi:g}"
    if hi == math.inf:
        return f"{terms} >= {lo:g}"
    return f"{lo:g} <= {terms} <= {hi:g}"


def artifact_from_text(text: str, kind_hint: str = "", name: str = "") -> Artifact:
    """An artifact from formal text (five-element JSON/YAML, LP or MPS), recognised by content.

    Raises ``InputError`` when the text is none of these.
    """
    low_name = name.lower()
    if low_name.endswith(".mps") or looks_like_mps(text):
        check_mps_numbers(text)
        return Artifact("milp", "mps", read_with_highs(text, ".mps"), text)
    if low_name.endswith(".lp") or looks_like_cplex_lp(text):
        if looks_like_cplex_lp(text) or kind_hint == "milp":
            return Artifact("milp", "lp", read_with_highs(text, ".lp"), text)
        raise InputError(
            f"{name or 'the input'} is not a CPLEX LP file; use --kind milp to force reading it as "
            "LP, or --kind asp for a clingo program"
        )
    if low_name.endswith((".json", ".yaml", ".yml")) or looks_like_five_element(text):
        return Artifact("milp", "five-element", read_five_element(text), text)
    raise InputError("the input is not a five-element model (JSON/YAML), an LP or an MPS file")
