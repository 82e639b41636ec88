"""The tool maker's prompts, as data files beside this module (``string.Template``, ``$name``)."""

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
