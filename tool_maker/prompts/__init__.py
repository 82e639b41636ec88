"""The tool maker's prompts, as data files beside this module (``string.Template``, ``$name``), and
the demos of artifact tools by kind (``demos/KIND.md``)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

HERE = Path(__file__).parent


@cache
def _template(name: str) -> Template:
    return Template((HERE / f"{name}.md").read_text(encoding="utf-8"))


def render(name: str, **values: object) -> str:
    """The prompt file ``name.md`` with ``$key`` replaced by ``values[key]`` (all required)."""
    return _template(name).substitute({k: str(v) for k, v in values.items()}).strip()


def demo(kind: str) -> str:
    """How a tool of another class builds an artifact of ``kind`` (``demos/KIND.md``), shown to the
    maker beside its own examples; "" for a kind without one. A demo is part of the prompt, never
    a tool: it is not cached and not offered to any request."""
    path = HERE / "demos" / f"{kind}.md"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else ""
