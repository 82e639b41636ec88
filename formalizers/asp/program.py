"""Clingo programs as artifacts: the checks before any grounding, and clingo's messages as diagnostics.

``check_program`` parses a program with clingo and runs clingo's non-ground checks (syntax, unsafe
variables, ``#const`` definitions) in this process: they cost no grounding, so they cannot blow up.
Grounding and solving happen in a child process (``solvers.clingo_backend``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.errors import ArtifactError, Diagnostic

FORBIDDEN_DIRECTIVES = ("#script", "#include")
"""Directives refused in any program: ``#script`` runs embedded code, ``#include`` reads files."""

ASP_FENCES = frozenset({"asp", "clingo", "gringo", "lp", "prolog", ""})
"""Languages of a fenced block taken as the program (a bare ``` fence counts)."""

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)


def extract_program(reply: str) -> str:
    """The program in a model reply: the last fenced block marked ``asp``, ``clingo``, ``lp``,
    ``prolog`` or unmarked; else the last fenced block of any language; else the whole reply.

    Raises ``ArtifactError("parse")`` when the reply, or the block taken from it, is empty.
    """
    if not reply or not reply.strip():
        raise ArtifactError(
            "parse",
            [Diagnostic("reply", "the reply is empty", "reply with the program in a ```asp block")],
        )
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(reply)]
    asp = [body for lang, body in blocks if lang in ASP_FENCES]
    text = asp[-1] if asp else (blocks[-1][1] if blocks else reply)
    if not text.strip():
        raise ArtifactError(
            "parse",
            [
                Diagnostic(
                    "reply", "the fenced block is empty", "put the whole program inside the block"
                )
            ],
        )
    # Kept exactly as written: clingo's line numbers must match the lines the model wrote.
    return text


@dataclass(frozen=True, slots=True)
class AspProgram:
    """A clingo program: facts, rules, integrity constraints, ``#minimize``, ``#show``.

    ``text`` is the program exactly as written; line and column numbers in diagnostics refer to it.
    """

    text: str

    def to_json(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class ClingoMessage:
    """One message clingo logged: ``severity`` (``error``, ``warning``, ``info``), where it points
    (1-based ``line`` and character ``column``; 0 when clingo gave no place), ``text`` (first line),
    ``detail`` (the lines after it), ``notes`` (attached notes, each ``(line, column, text)``),
    ``source`` (the program text the message points at, on one line)."""

    severity: str
    line: int
    column: int
    text: str
    detail: str = ""
    notes: tuple[tuple[int, int, str], ...] = ()
    source: str = ""


_HEAD = re.compile(
    r"^(?P<file><[^>]*>|[^:\n]*):(?P<line>\d+):(?P<col>\d+)(?:-(?:(?P<eline>\d+):)?(?P<ecol>\d+))?: "
    r"(?P<sev>error|warning|info|note): (?P<text>.*)$"
)


def byte_to_char_column(program: str, line: int, byte_column: int) -> int:
    """clingo counts columns in UTF-8 bytes; the character column (1-based) of the same place."""
    lines = program.splitlines()
    if not 0 < line <= len(lines):
        return byte_column
    raw = lines[line - 1].encode("utf-8")
    return len(raw[: max(byte_column - 1, 0)].decode("utf-8", errors="ignore")) + 1


def parse_messages(entries: list[tuple[str, str]], program: str) -> list[ClingoMessage]:
    """clingo's logged ``(code, message)`` pairs as ``ClingoMessage``s, notes attached to the message
    before them. Columns are converted to characters of ``program``."""
    out: list[ClingoMessage] = []
    for _code, message in entries:
        found: list[tuple[ClingoMessage, list[str], list[tuple[int, int, str]]]] = []
        for raw in message.splitlines():
            m = _HEAD.match(raw)
            if m is None:
                if raw.strip() and found:
                    found[-1][1].append(raw.strip())
                continue
            line, byte_col = int(m["line"]), int(m["col"])
            col = byte_to_char_column(program, line, byte_col)
            if m["sev"] == "note" and found:
                found[-1][2].append((line, col, m["text"].strip()))
                continue
            end = (int(m["eline"] or line), int(m["ecol"] or byte_col + 1))
            head = ClingoMessage(
                m["sev"],
                line,
                col,
                m["text"].strip().rstrip(":"),
                source=source_text(program, (line, byte_col), end),
            )
            found.append((head, [], []))
        if not found and message.strip():
            out.append(ClingoMessage("error", 0, 0, message.strip()))
        for head, detail, notes in found:
            out.append(
                ClingoMessage(
                    head.severity,
                    head.line,
                    head.column,
                    head.text,
                    "; ".join(detail),
                    tuple(notes),
                    head.source,
                )
            )
    return out


def source_text(program: str, begin: tuple[int, int], end: tuple[int, int]) -> str:
    """The text of ``program`` from ``begin`` to ``end`` (clingo's ``(line, byte column)`` pairs,
    1-based, end exclusive), on one line with runs of blanks collapsed."""
    lines = program.encode("utf-8").split(b"\n")
    (l1, c1), (l2, c2) = begin, end
    if not (0 < l1 <= l2 <= len(lines)):
        return ""
    if l1 == l2:
        chunk = lines[l1 - 1][c1 - 1 : c2 - 1]
    else:
        chunk = b"\n".join([lines[l1 - 1][c1 - 1 :], *lines[l1 : l2 - 1], lines[l2 - 1][: c2 - 1]])
    return " ".join(chunk.decode("utf-8", errors="replace").split())


def comment_for(program: str, line: int) -> str:
    """The comment that describes the statement on ``line``: a ``%`` comment at the end of that line,
    else the ``%`` comment lines right above it (joined); ``""`` when there is none."""
    lines = program.splitlines()
    if not 0 < line <= len(lines):
        return ""
    code, _, trailing = _split_comment(lines[line - 1])
    if trailing.strip() and code.strip():
        return trailing.strip()
    above: list[str] = []
    i = line - 2
    while i >= 0 and lines[i].lstrip().startswith("%") and not lines[i].lstrip().startswith("%*"):
        above.insert(0, lines[i].lstrip().lstrip("%").strip())
        i -= 1
    return " ".join(t for t in above if t)


def _split_comment(line: str) -> tuple[str, str, str]:
    """Split a line at its first ``%`` outside a string: ``(code, "%", comment)``."""
    in_string = escaped = False
    for i, ch in enumerate(line):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "%":
            return line[:i], "%", line[i + 1 :]
    return line, "", ""


def code_only(program: str) -> str:
    """``program`` with comments and string contents blanked out (same length and line breaks), for
    searching directives without matching text inside comments or strings."""
    out = list(program)
    i, n = 0, len(program)
    while i < n:
        ch = program[i]
        if program.startswith("%*", i):
            end = program.find("*%", i + 2)
            end = n if end < 0 else end + 2
            for j in range(i, end):
                if out[j] != "\n":
                    out[j] = " "
            i = end
        elif ch == "%":
            while i < n and program[i] != "\n":
                out[i] = " "
                i += 1
        elif ch == '"':
            i += 1
            while i < n and program[i] != '"':
                if program[i] == "\\":
                    out[i] = " "
                    i += 1
                if i < n and out[i] != "\n":
                    out[i] = " "
                i += 1
            i += 1
        else:
            i += 1
    return "".join(out)


def forbidden_directives(program: str) -> list[Diagnostic]:
    """``#script`` and ``#include`` outside comments and strings, located."""
    code = code_only(program)
    out = []
    for directive in FORBIDDEN_DIRECTIVES:
        for m in re.finditer(re.escape(directive) + r"\b", code):
            line = code.count("\n", 0, m.start()) + 1
            column = m.start() - (code.rfind("\n", 0, m.start()) + 1) + 1
            out.append(
                Diagnostic(
                    f"line {line}, column {column}",
                    f"{directive} is not allowed",
                    "write the whole program in plain ASP: facts, rules, constraints, "
                    "#minimize and #show; no embedded scripts and no included files",
                )
            )
    return out


SAFETY_HINT = (
    "every variable of a rule must occur in a positive body literal (not under 'not', not only in a "
    "comparison, an aggregate or the head); bind it with a domain predicate such as node(X)"
)


def artifact_error(messages: list[ClingoMessage], program: str, stage: str) -> ArtifactError:
    """The ``ArtifactError`` for clingo's errors: ``parse`` for syntax errors, ``safety`` for unsafe
    variables, ``ground`` for the rest. Each diagnostic is located ``line L, column C``."""
    errors = [m for m in messages if m.severity == "error"] or messages
    diags: list[Diagnostic] = []
    kinds: list[str] = []
    for m in errors:
        if m.text.startswith("unsafe variables in"):
            kinds.append("safety")
            rule = m.source or (m.detail.splitlines()[0] if m.detail else "")
            for line, col, note in m.notes or ((m.line, m.column, "a variable is unsafe"),):
                var = re.match(r"'([^']*)' is unsafe", note)
                name = f"variable {var.group(1)}" if var else "a variable"
                diags.append(
                    Diagnostic(
                        f"line {line}, column {col}",
                        f"{name} is unsafe in the rule `{rule}`",
                        SAFETY_HINT,
                    )
                )
        else:
            kinds.append("parse" if "syntax error" in m.text or stage == "parse" else "ground")
            where = f"line {m.line}, column {m.column}" if m.line else "program"
            near = _line_text(program, m.line)
            detail = f": {m.detail}" if m.detail else ""
            diags.append(Diagnostic(where, m.text + detail, f"near: {near!r}" if near else ""))
    kind = "parse" if "parse" in kinds else ("safety" if "safety" in kinds else "ground")
    summary = {
        "parse": "the program does not parse (clingo syntax)",
        "safety": "the program has unsafe variables, so clingo cannot ground it",
        "ground": "clingo cannot ground the program",
    }[kind]
    return ArtifactError(kind, diags[:20], summary)


def _line_text(program: str, line: int) -> str:
    lines = program.splitlines()
    return lines[line - 1].strip()[:100] if 0 < line <= len(lines) else ""


def check_program(text: str) -> AspProgram:
    """Parse ``text`` with clingo and run its non-ground checks; the program if they pass.

    Raises ``ArtifactError``: ``parse`` for an empty program, a syntax error or a forbidden directive
    (``#script``, ``#include``), ``safety`` for unsafe variables, ``ground`` for other errors clingo
    finds before grounding (such as a cyclic ``#const``). Nothing is grounded.
    """
    if not text.strip():
        raise ArtifactError(
            "parse",
            [Diagnostic("program", "the program is empty", "write facts, rules and constraints")],
        )
    bad = forbidden_directives(text)
    if bad:
        raise ArtifactError("parse", bad, "the program uses a directive that is not allowed")
    import clingo

    logged: list[tuple[str, str]] = []
    ctl = clingo.Control(logger=lambda code, msg: logged.append((str(code), msg)))
    stage = "parse"
    try:
        ctl.add("base", [], text)
        stage = "check"
        # Grounding no program part runs clingo's rewriting and safety checks on every statement
        # without instantiating anything.
        ctl.ground([])
    except RuntimeError as e:
        messages = parse_messages(logged, text) or [ClingoMessage("error", 0, 0, str(e))]
        raise artifact_error(messages, text, stage) from e
    return AspProgram(text)


_MARKER = re.compile(
    r":-|:~|#(?:show|minimi[sz]e|maximi[sz]e|const|program|external|heuristic|project|defined"
    r"|include|script)\b"
    r"|^[ \t]*-?[a-z_][A-Za-z0-9_']*[ \t]*\([^\n]*\)[ \t]*\.[ \t]*$"
    r"|\}[ \t]*(?:\d+[ \t]*)?(?:\.|:-)",
    re.MULTILINE,
)


def looks_like_clingo(text: str) -> bool:
    """Whether ``text`` has the marks of a clingo program outside comments and strings: a rule
    (``:-``), a directive (``#show``, ``#minimize``, ``#const``...), a fact with arguments on a line of
    its own (``edge(1,2).``) or a choice rule (``{ ... }.``)."""
    return bool(_MARKER.search(code_only(text[:200_000])))


def parses(text: str) -> bool:
    """Whether clingo parses ``text`` (syntax only; nothing is read from files or grounded)."""
    if forbidden_directives(text):
        return True  # a program, but one ``check_program`` will refuse with a located message
    from clingo import ast

    try:
        ast.parse_string(text, lambda _stmt: None, logger=lambda _code, _msg: None)
    except RuntimeError:
        return False
    return True
