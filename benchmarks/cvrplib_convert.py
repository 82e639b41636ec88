"""Rewrite a CVRP instance from the ``mrpritt/MC-VRP`` layout into CVRPLIB's layout.

    .venv/bin/python -m benchmarks.cvrplib_convert SOURCE.vrp OUT.vrp --comment TEXT [--check]

The source layout (``instances/Golden_*.vrp``, ``instances/Christofides_*.vrp`` there) puts the
depot's coordinates in ``DEPOT_SECTION``, numbers the clients from 1, says
``EDGE_WEIGHT_TYPE: FUNCTION`` / ``EDGE_WEIGHT_FORMAT: EUC_2D`` and carries a ``VEHICLES``
count. CVRPLIB's layout makes the depot node 1 (demand 0) and client ``k`` node ``k + 1``, says
``EDGE_WEIGHT_TYPE : EUC_2D``, and carries no fleet size (the count in the source is that of a
good solution; these problems leave the fleet free). Every value is kept as written: the
coordinates and demands as the same strings, ``CAPACITY``, ``DISTANCE`` and ``SERVICE_TIME``
as the same numbers (``650.00000`` is written ``650``).

With ``--check`` the result is read back with ``vrplib`` and its dimension, capacity, total
demand and route limit printed, for a cross-check against the published tables.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path


class SourceError(ValueError):
    """The source file is not in the layout this script reads."""


@dataclass(frozen=True)
class Source:
    """A source file's contents, every value as the source writes it."""

    head: dict[str, str]
    coords: list[tuple[int, str, str]]  # (client number, x, y)
    demands: list[tuple[int, str]]  # (client number, demand)
    depot: list[str]  # [x, y]


def _number(text: str) -> str:
    """``650.00000`` -> ``650``; ``10.5`` stays."""
    value = float(text)
    return str(int(value)) if value.is_integer() else repr(value)


def _numbers(lineno: int, fields: list[str]) -> None:
    for field in fields:
        try:
            float(field)
        except ValueError:
            raise SourceError(f"line {lineno}: {field!r} is not a number") from None


def parse(text: str) -> Source:
    head: dict[str, str] = {}
    coords: list[tuple[int, str, str]] = []
    demands: list[tuple[int, str]] = []
    depot: list[str] = []
    section = ""
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line in ("NODE_COORD_SECTION", "DEMAND_SECTION", "DEPOT_SECTION"):
            section = line
            continue
        if line == "EOF":
            break
        if not section:
            key, sep, value = line.partition(":")
            if not sep:
                raise SourceError(f"line {lineno}: expected KEY: VALUE, got {line!r}")
            head[key.strip().upper()] = value.strip()
            continue
        parts = line.split()
        if section == "NODE_COORD_SECTION":
            if len(parts) != 3:
                raise SourceError(f"line {lineno}: expected 'index x y', got {line!r}")
            _numbers(lineno, parts[1:])
            coords.append((int(parts[0]), parts[1], parts[2]))
        elif section == "DEMAND_SECTION":
            if len(parts) != 2:
                raise SourceError(f"line {lineno}: expected 'index demand', got {line!r}")
            _numbers(lineno, parts)
            demands.append((int(parts[0]), parts[1]))
        elif section == "DEPOT_SECTION":
            if parts == ["-1"]:
                section = "DONE"
            elif len(parts) == 2 and not depot:
                _numbers(lineno, parts)
                depot = parts
            else:
                raise SourceError(f"line {lineno}: expected the depot's 'x y', got {line!r}")
    n = len(coords)
    if not depot:
        raise SourceError("no depot coordinates in DEPOT_SECTION")
    if [i for i, _, _ in coords] != list(range(1, n + 1)):
        raise SourceError("NODE_COORD_SECTION does not number the clients 1..n in order")
    if [i for i, _ in demands] != list(range(1, n + 1)):
        raise SourceError(f"DEMAND_SECTION does not give the {n} clients' demands in order")
    if "DIMENSION" in head and int(head["DIMENSION"]) != n + 1:
        raise SourceError(f"DIMENSION {head['DIMENSION']} but {n} clients and a depot")
    if "CAPACITY" not in head:
        raise SourceError("no CAPACITY")
    return Source(head, coords, demands, depot)


def render(src: Source, name: str, comment: str) -> str:
    head, coords, demands, depot = src.head, src.coords, src.demands, src.depot
    lines = [
        f"NAME : {name}",
        f"COMMENT : {comment}",
        "TYPE : CVRP",
        f"DIMENSION : {len(coords) + 1}",
        "EDGE_WEIGHT_TYPE : EUC_2D",
        f"CAPACITY : {_number(head['CAPACITY'])}",
    ]
    for key in ("DISTANCE", "SERVICE_TIME"):
        if key in head:
            lines.append(f"{key} : {_number(head[key])}")
    lines.append("NODE_COORD_SECTION")
    lines.append(f"1 {_number(depot[0])} {_number(depot[1])}")
    lines += [f"{i + 1} {x} {y}" for i, x, y in coords]
    lines.append("DEMAND_SECTION")
    lines.append("1 0")
    lines += [f"{i + 1} {d}" for i, d in demands]
    lines += ["DEPOT_SECTION", "1", "-1", "EOF"]
    return "\n".join(lines) + "\n"


def summary(path: Path) -> str:
    import vrplib

    inst = vrplib.read_instance(str(path), compute_edge_weights=False)
    total = int(sum(inst["demand"]))
    cap = int(inst["capacity"])
    limit = inst.get("distance", "none")
    return (
        f"{path.stem}: dimension {inst['dimension']}, capacity {cap}, total demand {total} "
        f"(at least {-(-total // cap)} routes), route limit {limit}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--name", default="", help="NAME (default: the output file's stem)")
    ap.add_argument("--comment", required=True, help="COMMENT line (source, best known value)")
    ap.add_argument("--check", action="store_true", help="read the result back and summarise")
    args = ap.parse_args(argv)
    try:
        text = render(parse(args.source.read_text()), args.name or args.out.stem, args.comment)
    except (OSError, SourceError, ValueError) as exc:
        print(f"{args.source}: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(text)
    if args.check:
        print(summary(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
