"""The dispatcher: does a cached tool fit a new request, or must a new one be made?

LATM's dispatcher shows the model every tool and asks it to name one or say unknown. Here a
similarity pre-filter comes first, so the prompt stays small however large the cache grows:
requests and tools are bags of words weighted by TF-IDF over the cached tools (a tool's words are
its task, name, description and worked questions), and only the ``top_k`` tools whose cosine
similarity reaches ``min_score`` go to the model. No candidate means no model call: make a tool.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from agent.llm.chat import Chat
from tool_maker.prompts import render
from tool_maker.tool import Tool

_WORD = re.compile(r"[a-z][a-z]+")
_STOP = frozenset(
    "the a an and or of to in on at for is are be it its this that with as by from which what who "
    "how many much there their them they has have had was were will would can could should into "
    "each other than then these those if not no yes do does did so such".split()
)


def words(text: str) -> list[str]:
    """Lower-case words of two letters or more, without the commonest English words; underscores
    split (``sort_words`` is ``sort``, ``words``)."""
    return [w for w in _WORD.findall(text.lower().replace("_", " ")) if w not in _STOP]


def tool_text(tool: Tool) -> str:
    return " ".join([tool.task, tool.name, tool.description, *(d.question for d in tool.demos)])


@dataclass(frozen=True, slots=True)
class Candidate:
    tool: Tool
    score: float


def rank(request: str, tools: list[Tool]) -> list[Candidate]:
    """``tools`` by TF-IDF cosine similarity to ``request``, best first (ties by name)."""
    docs = [Counter(words(tool_text(t))) for t in tools]
    n = len(docs)
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.keys())
    idf = {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items()}

    def vec(counts: Counter[str]) -> dict[str, float]:
        return {w: (1 + math.log(c)) * idf.get(w, 0.0) for w, c in counts.items() if w in idf}

    q = vec(Counter(words(request)))
    qn = math.sqrt(sum(v * v for v in q.values()))
    out = []
    for tool, d in zip(tools, docs, strict=True):
        v = vec(d)
        vn = math.sqrt(sum(x * x for x in v.values()))
        dot = sum(q[w] * v.get(w, 0.0) for w in q)
        out.append(Candidate(tool, dot / (qn * vn) if qn and vn else 0.0))
    out.sort(key=lambda c: (-c.score, c.tool.name))
    return out


class Dispatcher:
    """Chooses a cached tool for a request, or none.

    ``client``: the model that names the tool (a cheap one is enough); without one the best
    candidate is taken when its score reaches ``confident``.
    """

    def __init__(
        self,
        client: Chat | None = None,
        top_k: int = 5,
        min_score: float = 0.1,
        confident: float = 0.5,
    ) -> None:
        self.client = client
        self.top_k = top_k
        self.min_score = min_score
        self.confident = confident

    def candidates(self, request: str, tools: list[Tool]) -> list[Candidate]:
        """The pre-filter: at most ``top_k`` tools scoring at least ``min_score``."""
        return [c for c in rank(request, tools) if c.score >= self.min_score][: self.top_k]

    def prompt(self, request: str, cands: list[Candidate]) -> str:
        listing = "\n".join(f"- {c.tool.name}: {c.tool.task}; {c.tool.description}" for c in cands)
        return render("dispatcher", tools=listing, request=request)

    def choose(self, request: str, tools: list[Tool]) -> Tool | None:
        """The tool for ``request``, or ``None`` when a new one must be made."""
        cands = self.candidates(request, tools)
        if not cands:
            return None
        if self.client is None:
            return cands[0].tool if cands[0].score >= self.confident else None
        reply = self.client.complete(
            [{"role": "user", "content": self.prompt(request, cands)}]
        ).text
        said = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", reply))
        named = [c.tool for c in cands if c.tool.name in said]
        return named[0] if len(named) == 1 else None
