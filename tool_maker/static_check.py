"""The static check: what a tool's source may say, read from its syntax tree before it ever runs.

It exists to give the language model a readable error ("line 3: `open` is not available to tools;
tools compute from their arguments and cannot touch files"), not to keep anyone out: Python offers
too many ways around any syntactic rule. The security boundary is the sandbox's process layers.

Rules: imports only from ``ALLOWED_IMPORTS`` (absolute, no relative imports); no dunder names or
attributes and no private attributes (``random._os``); none of ``BANNED_NAMES`` (``eval``, ``exec``,
``open``, ``getattr``...); no attribute named like a dangerous module or call (``dataclasses.sys``,
``dataclasses.inspect``, ``x.system``); no frame, code or traceback internals (``gi_frame``,
``f_globals``...); no format string that reaches into attributes (``"{0.__class__}"``, also
nested in a format spec: ``"{0:{1.__class__}}"``), and ``.format`` only on a literal template;
``operator.attrgetter``/``methodcaller`` only called directly with literal public names; none of
the helpers that turn strings into attributes or code (``string.Formatter``,
``typing.get_type_hints``, ``typing.ForwardRef``); string annotations are checked as code.

Every string-keyed way in is also closed at run time by the sandbox child's guards (module views,
checked getters, an audit hook); the kernel layers hold on their own under both.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterable

from agent.errors import ArtifactError, Diagnostic

ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {
        "array",
        "bisect",
        "calendar",
        "cmath",
        "collections",
        "collections.abc",
        "copy",
        "csv",
        "dataclasses",
        "datetime",
        "decimal",
        "difflib",
        "enum",
        "fractions",
        "functools",
        "graphlib",
        "heapq",
        "itertools",
        "json",
        "math",
        "numbers",
        "operator",
        "random",
        "re",
        "statistics",
        "string",
        "textwrap",
        "typing",
        "unicodedata",
    }
)
"""Standard modules a tool may import: computation only, nothing that reaches files, processes,
the network or the interpreter itself."""

BANNED_NAMES: frozenset[str] = frozenset(
    {
        "__import__",
        "__builtins__",
        "__loader__",
        "__spec__",
        "breakpoint",
        "compile",
        "delattr",
        "dir",
        "eval",
        "exec",
        "exit",
        "getattr",
        "globals",
        "help",
        "input",
        "locals",
        "memoryview",
        "open",
        "quit",
        "setattr",
        "vars",
    }
)
"""Builtins a tool may not name: they run code, reach files, or reach objects by computed names."""

BANNED_ATTRIBUTES: frozenset[str] = frozenset(
    {
        # interpreter internals: frames, code objects, generators, tracebacks
        "ag_code",
        "ag_frame",
        "co_code",
        "cr_await",
        "cr_code",
        "cr_frame",
        "f_back",
        "f_builtins",
        "f_code",
        "f_globals",
        "f_locals",
        "gi_code",
        "gi_frame",
        "gi_yieldfrom",
        "tb_frame",
        "tb_next",
        "format_map",
        "mro",
        # modules that stdlib modules import under public names (dataclasses.sys, json.decoder.re...)
        "builtins",
        "ctypes",
        "importlib",
        "io",
        "modules",
        "os",
        "pickle",
        "posix",
        "shutil",
        "signal",
        "socket",
        "subprocess",
        "sys",
        "threading",
        # process and file calls wherever they hang
        "environ",
        "execv",
        "execve",
        "fork",
        "getenv",
        "kill",
        "popen",
        "spawn",
        "system",
        # modules that reach files, frames or the import machinery, under their public names
        "codecs",
        "copyreg",
        "encodings",
        "gc",
        "inspect",
        "linecache",
        "locale",
        "marshal",
        "pathlib",
        "pkgutil",
        "runpy",
        "tempfile",
        "tokenize",
        "traceback",
        "zipimport",
        # helpers that turn strings into attribute access or code
        "Formatter",
        "ForwardRef",
        "get_type_hints",
    }
)

STRING_GETTERS: frozenset[str] = frozenset({"attrgetter", "methodcaller"})
"""``operator``'s getters by name: allowed only called directly with literal, public names."""

WITHHELD_NAMES: frozenset[str] = frozenset({"Formatter", "ForwardRef", "get_type_hints"})
"""Public names of allowed modules that tools may not use at all (string-to-attribute or
string-to-code helpers); the sandbox child leaves them out of its modules too."""

MAX_SOURCE_CHARS = 100_000
"""Longer sources are refused before parsing (a tool is a function, not a program)."""

_DUNDER = re.compile(r"^__\w*__$")


def _where(node: ast.AST) -> str:
    line = getattr(node, "lineno", None)
    col = getattr(node, "col_offset", None)
    if line is None:
        return ""
    return f"line {line}, column {(col or 0) + 1}"


def _format_fields(text: str, depth: int = 0) -> Iterable[str]:
    """The field names of ``text`` read as a ``str.format`` template (none if it is not one),
    those nested in format specs (``"{0:{1.attr}}"``) included."""
    if depth > 4:  # str.format itself refuses nesting deeper than 2
        yield "(nested too deeply)."
        return
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:  # not a valid template: str.format would refuse it too
        return
    for _literal, field, spec, _conv in parsed:
        if field:
            yield field
        if spec and "{" in spec:
            yield from _format_fields(spec, depth + 1)


def _attribute_path_ok(path: str) -> bool:
    """Whether each part of a dotted attribute path is public, not banned, and not ``format``
    (a string's bound ``format`` would format a template the check never saw)."""
    return all(
        p and not p.startswith("_") and p not in BANNED_ATTRIBUTES and p != "format"
        for p in path.split(".")
    )


class _Checker(ast.NodeVisitor):
    def __init__(self, allowed_imports: frozenset[str]) -> None:
        self.allowed = allowed_imports
        self.found: list[Diagnostic] = []
        self._checked_calls: set[int] = set()  # getter references checked as a call's function
        self._format_receivers: set[int] = set()

    def _flag(self, node: ast.AST, message: str, hint: str) -> None:
        self.found.append(Diagnostic(_where(node), message, hint))

    def _check_module(self, node: ast.AST, name: str) -> None:
        if name not in self.allowed:  # exactly: a package's other submodules (json.tool...) are not
            allowed = ", ".join(sorted(self.allowed))
            self._flag(
                node,
                f"importing `{name}` is not allowed",
                f"tools may import only these standard modules: {allowed}",
            )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self._flag(node, "relative imports are not allowed", "a tool is a single module")
        else:
            self._check_module(node, node.module or "")
            for alias in node.names:
                if alias.name != "*" and (_DUNDER.match(alias.name) or alias.name.startswith("_")):
                    self._flag(
                        node,
                        f"importing the private name `{alias.name}` is not allowed",
                        "use the module's public functions",
                    )
                elif alias.name in STRING_GETTERS and alias.asname not in (None, alias.name):
                    self._flag(
                        node,
                        f"importing `{alias.name}` under another name is not allowed",
                        f"import it as `{alias.name}` and call it with literal attribute names",
                    )
                elif alias.name in BANNED_ATTRIBUTES:
                    self._flag(
                        node,
                        f"importing `{alias.name}` is not allowed",
                        "tools cannot reach the interpreter, files, processes, or turn strings "
                        "into attributes or code",
                    )
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in BANNED_NAMES:
            self._flag(
                node,
                f"`{node.id}` is not available to tools",
                "tools compute from their arguments: no files, no dynamic code, no reflection",
            )
        elif _DUNDER.match(node.id) and node.id not in ("__name__", "__doc__"):
            self._flag(node, f"the name `{node.id}` is not allowed", "do not use dunder names")
        elif node.id in WITHHELD_NAMES:
            self._flag(
                node,
                f"`{node.id}` is not available to tools",
                "it turns strings into attributes or code",
            )
        elif node.id in STRING_GETTERS and id(node) not in self._checked_calls:
            self._getter_misuse(node, node.id)
        self.generic_visit(node)

    def _getter_misuse(self, node: ast.AST, name: str) -> None:
        self._flag(
            node,
            f"`{name}` may only be called directly, with literal public attribute names",
            "write the attribute access out (x.name), or pass a lambda",
        )

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = (
            func.id
            if isinstance(func, ast.Name)
            else func.attr
            if isinstance(func, ast.Attribute)
            else ""
        )
        if name in STRING_GETTERS:
            self._checked_calls.add(id(func))
            literal = [a.value for a in node.args if isinstance(a, ast.Constant)]
            names = literal if name == "attrgetter" else literal[:1]
            wanted = len(node.args) if name == "attrgetter" else 1
            if (
                len(names) != wanted
                or not node.args
                or any(isinstance(a, ast.Starred) for a in node.args)
                or not all(isinstance(n, str) and _attribute_path_ok(n) for n in names)
            ):
                self._getter_misuse(node, name)
        if isinstance(func, ast.Attribute) and func.attr == "format":
            if isinstance(func.value, ast.Constant | ast.JoinedStr):
                self._format_receivers.add(id(func))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("_"):
            self._flag(
                node,
                f"the attribute `.{attr}` is not allowed",
                "tools may not use dunder or private attributes; use public functions and methods",
            )
        elif attr in BANNED_ATTRIBUTES:
            self._flag(
                node,
                f"the attribute `.{attr}` is not allowed",
                "tools cannot reach the interpreter, files, processes or the network, "
                "or turn strings into attributes or code",
            )
        elif attr in STRING_GETTERS and id(node) not in self._checked_calls:
            self._getter_misuse(node, attr)
        elif attr == "format" and not (
            isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        ):
            if id(node) not in self._format_receivers:
                self._flag(
                    node,
                    "`.format` is allowed only on a literal template",
                    "write the template where it is formatted ('{0:.2f}'.format(x)) or use an f-string",
                )
        self.generic_visit(node)

    def _check_annotation(self, annotation: ast.expr | None) -> None:
        """String annotations are code that ``typing`` may evaluate: check them as code."""
        if annotation is None:
            return
        for sub in ast.walk(annotation):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                try:
                    tree = ast.parse(sub.value.strip(), mode="eval")
                except (SyntaxError, ValueError):
                    continue  # not an expression: nothing that could be evaluated
                inner = _Checker(self.allowed)
                inner.visit(tree)
                for d in inner.found:
                    self._flag(sub, f"in a string annotation: {d.message}", d.hint)

    def visit_arg(self, node: ast.arg) -> None:
        self._check_annotation(node.annotation)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_annotation(node.annotation)
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        """``case C(name=x)`` reads the attribute ``name`` of the subject."""
        for attr in node.kwd_attrs:
            if not _attribute_path_ok(attr):
                self._flag(
                    node,
                    f"the class pattern reads the attribute `{attr}`, which is not allowed",
                    "match on public attributes only",
                )
        self.generic_visit(node)

    def _check_def_name(self, node: ast.AST, name: str) -> None:
        if _DUNDER.match(name):
            self._flag(node, f"the name `{name}` is not allowed", "do not define dunder names")

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._check_def_name(node, node.name)
        self._check_annotation(node.returns)
        self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._check_def_name(node, node.name)
        self._check_annotation(node.returns)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_def_name(node, node.name)
        for kw in node.keywords:
            if kw.arg == "metaclass":
                self._flag(node, "metaclasses are not allowed", "use a plain class or a dataclass")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and "{" in node.value:
            for field in _format_fields(node.value):
                if "." in field or "__" in field:
                    self._flag(
                        node,
                        f"the format field `{{{field}}}` reaches into attributes",
                        "format plain values: pass them as arguments, e.g. '{0}'.format(x) or an f-string",
                    )
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            if _DUNDER.match(name):
                self._flag(node, f"the name `{name}` is not allowed", "do not use dunder names")
        self.generic_visit(node)


def check_source(code: str, allowed_imports: frozenset[str] = ALLOWED_IMPORTS) -> list[Diagnostic]:
    """Every rule ``code`` breaks, in source order; empty when it passes.

    A syntax error is one finding with the line and column the parser gives.
    """
    if len(code) > MAX_SOURCE_CHARS:
        return [
            Diagnostic(
                "",
                f"the source is {len(code):,} characters; the limit is {MAX_SOURCE_CHARS:,}",
                "write one short function",
            )
        ]
    if "\x00" in code:
        return [Diagnostic("", "the source contains a NUL character", "send plain Python text")]
    try:
        tree = ast.parse(code, filename="<tool>")
    except SyntaxError as e:
        where = f"line {e.lineno}, column {e.offset}" if e.lineno else ""
        return [Diagnostic(where, f"syntax error: {e.msg}", "send valid Python 3 code")]
    except (ValueError, RecursionError, MemoryError) as e:  # absurdly nested input
        return [Diagnostic("", f"the source cannot be parsed: {type(e).__name__}", "simplify it")]
    checker = _Checker(allowed_imports)
    try:
        checker.visit(tree)
    except RecursionError:
        return [Diagnostic("", "the source is nested too deeply", "simplify it")]
    return checker.found


class UnsafeCode(ArtifactError):
    """The tool's source breaks a static rule; ``feedback()`` lists each break with its line."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        kind = "parse" if diagnostics and "syntax" in diagnostics[0].message else "unsafe"
        n = len(diagnostics)
        super().__init__(
            kind,
            diagnostics,
            f"the tool's code was refused before running ({n} problem{'s' if n != 1 else ''})",
        )


def require_safe(code: str, allowed_imports: frozenset[str] = ALLOWED_IMPORTS) -> None:
    """Raise ``UnsafeCode`` when ``check_source`` finds anything."""
    found = check_source(code, allowed_imports)
    if found:
        raise UnsafeCode(found)
