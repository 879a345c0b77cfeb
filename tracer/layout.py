"""Layout planning for big graphs: estimated cost, proxy nodes for far-reaching inputs, tuning."""

from __future__ import annotations

from dataclasses import dataclass

from .themes import Theme

__all__ = ["LayoutPlan", "plan", "graph_attributes", "LARGE_GRAPH", "HUGE_GRAPH", "LONG_EDGES",
           "STRAIGHT_EDGES", "FAR"]

# Layout cost is driven by nodes and by "virtual nodes" (one per rank an edge skips): crossing
# minimisation, network simplex and spline routing all grow with them. Measured on real traces
# (bench/render.py): above LARGE_GRAPH nodes or LONG_EDGES skipped ranks, limiting mincross and
# network simplex keeps the picture close and cuts layout time 4x; above STRAIGHT_EDGES spline
# routing alone takes over 5 s (20 s on the tanh 7th-derivative graph), so edges become straight.
# A variable used far below where it was made (x in y = y*x + y, a weight in every layer) gets a
# small dashed copy next to each far use instead of an edge across FAR or more ranks: skipped
# ranks grow with the square of the depth otherwise (3,300 nodes took 190 s). Above HUGE_GRAPH
# nodes edges are straight and crossing minimisation shorter (a 5,000-node tree: 2.3 → 1.9 s).
LARGE_GRAPH = 600
HUGE_GRAPH = 2500
LONG_EDGES = 2000
STRAIGHT_EDGES = 6000
FAR = 6
SPREAD_USES = 6  # a variable used by this many functions gets a rank of room below it


@dataclass(frozen=True)
class LayoutPlan:
    """``virtual``: estimated skipped ranks left; ``proxied``: (call, input position) pairs drawn
    from a proxy copy of the input instead of the input itself."""

    virtual: int
    proxied: frozenset
    spread: frozenset = frozenset()  # variables used by many calls: a rank skipped below them


def plan(trace, calls, weight: int = 1, skip=frozenset()) -> LayoutPlan:
    """Estimate the layout's skipped ranks (longest-path ranks) and choose the proxied inputs.

    ``calls`` must be in execution order (a topological order); ``weight`` counts parallel
    edges (2 with gradient edges). Inputs in ``skip`` (constants: used once, placed right above
    their use) never count as long edges.
    """
    depth: dict[int, int] = {}
    spans: list[tuple[int, int, int]] = []
    for call_id in calls:
        call = trace.calls[call_id]
        ranks = [depth.get(v, 0) for v in call.inputs]
        level = max(ranks, default=0) + 1
        for position, rank in enumerate(ranks):
            if level - rank > 1 and call.inputs[position] not in skip:
                spans.append((call_id, position, level - rank - 1))
        for v in call.outputs:
            depth[v] = level + 1
    uses: dict[int, int] = {}
    for call_id in calls:
        for v in set(trace.calls[call_id].inputs):
            uses[v] = uses.get(v, 0) + 1
    # a variable many functions use, on the rank right above them all, sends its edges out
    # nearly flat along the tops of their boxes (goldstein_price's x and y): room between
    spread = frozenset(v for v, n in uses.items() if n >= SPREAD_USES and v not in skip)
    total = sum(span for _, _, span in spans) * weight
    if total <= LONG_EDGES:
        return LayoutPlan(total, frozenset(), spread)
    proxied = frozenset((c, p) for c, p, span in spans if span >= FAR)
    left = sum(span for _, _, span in spans if span < FAR) * weight
    return LayoutPlan(left, proxied, spread)


def graph_attributes(theme: Theme, rankdir: str, nodes: int, virtual: int = 0) -> dict[str, str]:
    """Graph-level attributes: direction, spacing, font, and speed tuning for large graphs.

    ``virtual`` estimates the ranks skipped by edges (see LONG_EDGES / STRAIGHT_EDGES).
    """
    attrs = {"rankdir": rankdir.upper(), "newrank": "true", "nodesep": "0.25",
             "ranksep": "0.3", "fontname": theme.font, "fontsize": str(theme.small_size + 1),
             "bgcolor": "white", "pad": "0.1"}
    if nodes > LARGE_GRAPH or virtual > LONG_EDGES:
        attrs.update({"mclimit": "0.1", "nslimit": "0.2"})
    if virtual > STRAIGHT_EDGES or nodes > HUGE_GRAPH:
        attrs.update({"splines": "line", "mclimit": "0.05" if nodes <= HUGE_GRAPH else "0.02"})
    return attrs
