"""A picture of routing answers: the routes on the plane, one colour per vehicle (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.errors import InputError


def plot_answer(answer: Any, path: str | Path) -> Path:
    """Draw ``answer``'s routes into ``path`` (the format from its suffix: .png, .svg, .pdf).
    Depots are black squares, clients dots, each route a coloured closed line.

    Raises ``InputError`` when the answer has no routes or its locations have no coordinates."""
    from formalizers.routing.spec import parse_spec

    result = answer.solve_result
    if answer.kind != "routing" or result is None or result.routes is None:
        raise InputError("--plot needs a routing answer with routes")
    spec = parse_spec(answer.artifact)
    return plot_routes(spec, result.routes, path)


def plot_routes(spec: Any, routes: Any, path: str | Path) -> Path:
    """Draw ``routes`` of ``spec`` (a ``RoutingSpec``) into ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    from formalizers.routing.measure import places

    xy = {loc.id: (loc.x, loc.y) for loc in spec.locations}
    if any(x is None or y is None for x, y in xy.values()):
        raise InputError("cannot draw routes: some locations have no coordinates")
    fig, ax = plt.subplots(figsize=(7, 7))
    depots = {d.id for d in spec.depots}
    cx = [xy[c.id][0] for c in spec.clients]
    cy = [xy[c.id][1] for c in spec.clients]
    ax.scatter(cx, cy, s=14, c="grey", zorder=2, label="clients")
    ax.scatter(
        [xy[d][0] for d in depots],
        [xy[d][1] for d in depots],
        s=90,
        c="black",
        marker="s",
        zorder=3,
        label="depots",
    )
    cmap = plt.get_cmap("tab20")
    for n, r in enumerate(routes):
        ids = places(spec, r)  # every place the route passes, depots it stops at included
        ax.plot(
            [xy[i][0] for i in ids],
            [xy[i][1] for i in ids],
            "-",
            color=cmap(n % 20),
            lw=1.4,
            zorder=1,
            label=f"route {n + 1}" if n < 10 else None,
        )
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"{spec.name or 'routes'}: {len(routes)} route(s)")
    ax.legend(loc="best", fontsize="small")
    out = Path(path)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out
