"""Natural language -> ASP facts ``given(p, "v").`` and ``want(p).`` over an API catalog."""

from __future__ import annotations

import re
from string import Template

from agent.errors import ArtifactError, Diagnostic
from agent.llm.chat import Chat, Message
from formalizers.apis.model import ApiCatalog, ApiRequest
from formalizers.base import (
    Artifact,
    Feedback,
    ask,
    load_prompt,
    prompt_hash,
    reading,
    repair_turns,
)

_GIVEN = re.compile(r'^given\(\s*([a-z][a-z0-9_]*)\s*,\s*"((?:[^"\\]|\\.){0,500})"\s*\)\s*\.$')
_WANT = re.compile(r"^want\(\s*([a-z][a-z0-9_]*)\s*\)\s*\.$")
_FENCE = re.compile(r"```[a-zA-Z]*\s*\n(.*?)```", re.DOTALL)


def _prompt(name: str) -> str:
    return load_prompt("formalizers.apis", name)


def prompt_version() -> str:
    return prompt_hash("formalizers.apis", ("system.md", "request.md", "repair.md"))


def read_facts(text: str, catalog: ApiCatalog) -> ApiRequest:
    """``given``/``want`` facts (one per line, ``%`` comments allowed) -> an ``ApiRequest``."""
    given: dict[str, str] = {}
    want: list[str] = []
    diags = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("%", 1)[0].strip()
        if not line:
            continue
        if m := _GIVEN.match(line):
            given[m.group(1)] = m.group(2).replace('\\"', '"')
        elif m := _WANT.match(line):
            want.append(m.group(1))
        else:
            diags.append(
                Diagnostic(
                    f"line {n}", f"'{line[:80]}' is not a given(p, \"value\"). or want(p). fact"
                )
            )
    if not want and not diags:
        diags.append(Diagnostic("facts", "no want(...) fact: what does the person want?"))
    if diags:
        raise ArtifactError("parse", diags, "the facts do not parse")
    req = ApiRequest(catalog=catalog, given=given, want=want)
    req.check()
    return req


class ApiFormalizer:
    kind = "apis"

    def __init__(self, client: Chat, catalog: ApiCatalog) -> None:
        self.client = client
        self.catalog = catalog

    def messages(self, request: str, feedback: Feedback | None = None) -> list[Message]:
        apis = "\n".join(
            f"- {a.name}: {', '.join(a.inputs) or '(nothing)'} -> {', '.join(a.outputs)}"
            + (f"  ({a.description})" if a.description else "")
            for a in self.catalog.apis
        )
        described = {p.name: p.description for p in self.catalog.parameters}
        params = "\n".join(
            f"- {p}" + (f": {described[p]}" if described.get(p) else "")
            for p in self.catalog.all_params
        )
        msgs: list[Message] = [
            {"role": "system", "content": _prompt("system.md")},
            {
                "role": "user",
                "content": Template(_prompt("request.md")).substitute(
                    apis=apis, params=params, request=request
                ),
            },
        ]
        if feedback is not None:
            msgs += repair_turns("formalizers.apis", feedback)
        return msgs

    def formalize(
        self, request: str, feedback: Feedback | None = None, attempt: int = 1
    ) -> Artifact:
        reply, prov = ask(self.client, self.messages(request, feedback), attempt, prompt_version())
        blocks = [m.group(1) for m in _FENCE.finditer(reply)]
        with reading(reply):
            req = read_facts(blocks[-1] if blocks else reply, self.catalog)
        return Artifact("apis", "asp-facts", req, reply, prov)
