"""The grammar of a tool maker's reply: a ``python`` block, then a ``json`` block that names the
function and holds exactly one call per question.

``maker_grammar(calls)`` is what ``ToolMaker`` passes with each call to its model (``Chat.complete(
messages, output=grammar)``): a local model samples under it, so its reply always has the two
blocks ``parse_reply`` (here too) reads, with the right number of calls, and none of the prose, third block or
bare JSON a small model otherwise writes. The code itself is free text (any characters but a
backtick, in at most ``MAX_CODE_LINES`` lines): what it does is checked by the static check and the sandbox,
never by the grammar. A served model gets the reply unconstrained (EBNF has no portable form) and
the same parser reads it.

The calls are ``{"args": [...], "kwargs": {}}``: arguments by position, values any JSON (strings
and numbers of bounded length, lists and objects nested at most ``depth`` deep).
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from agent.errors import ArtifactError, Diagnostic
from agent.llm.grammar import Grammar, lit

MAX_CODE_LINES = 160
"""Lines of code a reply may hold (a tool is a small function)."""
MAX_LINE: int | None = None
"""Characters in one line of code (None: any; the reply's token budget bounds it). A limit cuts a
long line (a dict literal, a docstring) in the middle of a string and makes the code invalid."""


_BLOCK = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)


def parse_reply(reply: str) -> tuple[str, dict[str, Any]]:
    """The code and the JSON of a maker reply; ``ArtifactError`` (kind ``parse``) if either is missing."""
    code, meta = None, None
    for lang, body in _BLOCK.findall(reply):
        lang = lang.lower()
        if lang in ("python", "py", "python3") and code is None:
            code = body
        elif lang == "json" and meta is None:
            meta = body
    problems = []
    if code is None:
        problems.append(
            Diagnostic(
                "reply", "there is no ```python block", "put the function in a ```python block"
            )
        )
    obj: Any = None
    if meta is None:
        problems.append(
            Diagnostic(
                "reply",
                "there is no ```json block",
                'add ```json {"function": ..., "calls": [...]}```',
            )
        )
    else:
        try:
            obj = json.loads(meta)
        except ValueError as e:
            problems.append(
                Diagnostic("json block", f"not valid JSON: {e}", "send one JSON object")
            )
        else:
            if not isinstance(obj, dict) or not isinstance(obj.get("calls"), list):
                problems.append(
                    Diagnostic(
                        "json block",
                        'expected an object with a "calls" list',
                        'send {"function": ..., "calls": [...]}',
                    )
                )
    if problems:
        raise ArtifactError("parse", problems, "the reply could not be read")
    assert code is not None
    return code, obj


def _value_rules(depth: int, max_items: int, max_string: int) -> list[str]:
    """GBNF rules ``value0`` .. ``value{depth}``: JSON values whose lists and objects nest at most
    ``depth`` deep (``value{depth}`` is the outermost), with at most ``max_items`` members each."""
    rules = [
        f'str ::= "\\"" ([^"\\\\\\x00-\\x1f] | "\\\\" ["\\\\/bfnrt]){{0,{max_string}}} "\\""',
        'num ::= "-"? ("0" | [1-9] [0-9]{0,11}) ("." [0-9]{1,10})? ([eE] [-+]? [0-9]{1,3})?',
        'atom ::= str | num | "true" | "false" | "null"',
        "value0 ::= atom",
    ]
    more = max(max_items - 1, 0)
    for d in range(1, depth + 1):
        inner = f"value{d - 1}"
        rules.append(
            f'value{d} ::= atom | "[" ({inner} (", " {inner}){{0,{more}}})? "]" '
            f'| "{{" (str ": " {inner} (", " str ": " {inner}){{0,{more}}})? "}}"'
        )
    return rules


@cache
def maker_grammar(
    calls: int,
    depth: int = 4,
    max_items: int = 32,
    max_string: int = 120,
    max_args: int = 12,
    max_lines: int = MAX_CODE_LINES,
    max_line: int | None = MAX_LINE,
) -> Grammar:
    """The maker's reply with ``calls`` calls (one per question, worked and held out), under the
    size limits given (see the module doc). The grammar's validator is ``parse_reply``."""
    if calls < 1:
        raise ValueError("a maker reply answers at least one question")
    top = f"value{depth}"
    call = (
        f'"{{\\"args\\": [" ({top} (", " {top}){{0,{max(max_args - 1, 0)}}})? '
        f'"], \\"kwargs\\": {{}}}}"'
    )
    rules = [
        "root ::= "
        + lit("```python\n")
        + f" line{{1,{max_lines}}} "
        + lit('```\n\n```json\n{"function": "')
        + " fname "
        + lit('", "calls": [')
        + " call"
        + (f' (", " call){{{calls - 1}}}' if calls > 1 else "")
        + " "
        + lit("]}\n```"),
        'line ::= [^`\\n]* "\\n"'
        if max_line is None
        else f'line ::= [^`\\n]{{0,{max_line}}} "\\n"',
        "fname ::= [a-zA-Z] [a-zA-Z0-9_]{0,47}",
        f"call ::= {call}",
        *_value_rules(depth, max_items, max_string),
    ]
    return Grammar(
        f"tool maker reply ({calls} calls)", "ebnf", "\n".join(rules), "maker", parse_reply
    )
