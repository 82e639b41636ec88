"""What changed between two versions of an artifact, in words (for follow-ups in a session)."""

from __future__ import annotations

from typing import Any


def _by_name(items: Any) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in items or [] if isinstance(i, dict) and "name" in i}


def _value(p: dict[str, Any]) -> Any:
    return p.get("value", p.get("values", p.get("default")))


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def describe_changes(old: Any, new: Any) -> list[str]:
    """Lines such as ``budget: 4000 -> 5000`` or ``constraint max_trucks added``. Works on
    five-element models (dicts); any other artifact is compared as a whole."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [] if old == new else ["the model was rewritten"]
    lines: list[str] = []
    for section, noun in (
        ("parameters", "parameter"),
        ("variables", "variable"),
        ("constraints", "constraint"),
        ("sets", "set"),
    ):
        a, b = _by_name(old.get(section)), _by_name(new.get(section))
        for name in b.keys() - a.keys():
            what = (
                b[name].get("expression") or _fmt(_value(b[name]))
                if section != "variables"
                else b[name].get("domain", "")
            )
            lines.append(f"{noun} {name} added" + (f": {what}" if what else ""))
        for name in a.keys() - b.keys():
            lines.append(f"{noun} {name} removed")
        for name in sorted(a.keys() & b.keys()):
            x, y = a[name], b[name]
            if x == y:
                continue
            if section == "parameters" and _value(x) != _value(y):
                lines.append(f"{name}: {_fmt(_value(x))} -> {_fmt(_value(y))}")
            elif section == "constraints" and x.get("expression") != y.get("expression"):
                lines.append(f"constraint {name}: {x.get('expression')} -> {y.get('expression')}")
            elif section == "sets" and x.get("members") != y.get("members"):
                lines.append(f"set {name}: {x.get('members')} -> {y.get('members')}")
            else:
                changed = sorted(
                    k for k in x.keys() | y.keys() if x.get(k) != y.get(k) and k != "description"
                )
                if changed:
                    lines.append(
                        f"{noun} {name}: {', '.join(f'{k} {_fmt(x.get(k))} -> {_fmt(y.get(k))}' for k in changed)}"
                    )
    o, n = old.get("objective") or {}, new.get("objective") or {}
    if o.get("sense") != n.get("sense") or o.get("expression") != n.get("expression"):
        lines.append(
            f"objective: {o.get('sense')} {o.get('expression')} -> {n.get('sense')} {n.get('expression')}"
        )
    return lines
