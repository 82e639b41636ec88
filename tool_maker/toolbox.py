"""The toolbox: dispatcher, maker, cache and user together, for the agent and the CLI.

``Toolbox.solve(question, task)``: the dispatcher looks for a cached tool that fits; if none does
and the request brings a ``TaskSpec`` (a kind of task with worked examples), the maker makes one,
the cache stores it, and the user model calls it. A second question of the same kind then costs the
dispatcher's and the user's calls only, never the maker's.

Formalizers use it for computation the formal languages express badly (a pasted table to parse, a
distance matrix from coordinates, a unit conversion): they ask for a tool instead of doing the
arithmetic in the model's head.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.errors import StopError
from agent.llm.chat import Chat
from tool_maker.cache import ToolCache
from tool_maker.dispatcher import Dispatcher
from tool_maker.maker import TaskSpec, ToolMaker
from tool_maker.sandbox import Sandbox
from tool_maker.tool import Tool
from tool_maker.user import ToolAnswer, ToolUser


class NoToolFits(StopError):
    """No cached tool fits the request and it brought no examples to make one from."""


@dataclass(frozen=True, slots=True)
class Solved:
    """An answer, the tool that gave it, and whether the tool was made for this request."""

    answer: ToolAnswer
    tool: Tool
    made: bool


class Toolbox:
    """``maker``: the strong model; ``user``: the cheap one; ``dispatcher``: defaults to ``user``."""

    def __init__(
        self,
        cache: ToolCache,
        sandbox: Sandbox,
        maker: Chat | None,
        user: Chat,
        dispatcher: Chat | None = None,
        max_attempts: int = 3,
    ) -> None:
        self.cache = cache
        self.sandbox = sandbox
        self.maker = ToolMaker(maker, sandbox, max_attempts) if maker is not None else None
        self.user = ToolUser(user, sandbox)
        self.dispatcher = Dispatcher(dispatcher or user)

    def tool_for(self, question: str, task: TaskSpec | None = None) -> tuple[Tool, bool]:
        """A cached tool that fits, or a new one made from ``task``; and whether it was made."""
        tools = self.cache.latest()
        if task is not None:
            same = [t for t in tools if t.task == task.name]
            if len(same) == 1:
                return same[0], False
        chosen = self.dispatcher.choose(question, tools)
        if chosen is not None:
            return chosen, False
        if task is None:
            raise NoToolFits(
                "no cached tool fits this request; give a kind of task with worked examples to make one"
            )
        if self.maker is None:
            raise NoToolFits("no cached tool fits this request and no maker model is configured")
        tool = self.maker.make(task)
        existing = self.cache.get(tool.name)
        if existing is not None and existing.task != tool.task:
            n = 2
            while self.cache.get(f"{tool.name}_{n}") is not None:
                n += 1
            tool = Tool.from_json({**tool.to_json(), "name": f"{tool.name}_{n}"})
        return self.cache.put(tool, self.sandbox), True

    def solve(self, question: str, task: TaskSpec | None = None) -> Solved:
        """Answer ``question`` with a tool (see the module doc)."""
        tool, made = self.tool_for(question, task)
        return Solved(self.user.answer(tool, question), tool, made)
