"""Woodpecker's ordering rule as an explicit dependency graph.

When no step of a workflow has ``depends_on``, the steps run one after another in file order: each
depends on the one before it. Once any step has ``depends_on`` (even ``depends_on: []``), the workflow is a
DAG: each step waits only for the steps it names, and steps without ``depends_on`` start at once.
A detached step counts as finished as soon as it has started (the engine's rule, noted here so the graph
is read right). Unknown names and cycles are errors; the same checks apply to workflows' ``depends_on``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from corral.core.pipelines.definition import Step

__all__ = ["graph_problems", "step_dependencies", "topological_order"]


def step_dependencies(steps: Sequence[Step]) -> dict[str, tuple[str, ...]]:
    """Each step's name → the names it waits for, in file order (names must be unique)."""
    if not any(s.depends_on is not None for s in steps):
        return {s.name: ((steps[i - 1].name,) if i else ()) for i, s in enumerate(steps)}
    return {s.name: tuple(dict.fromkeys(s.depends_on or ())) for s in steps}


def graph_problems(deps: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """``(node, message)`` for every unknown dependency and every cycle (each cycle named once)."""
    problems: list[tuple[str, str]] = []
    for name, needs in deps.items():
        for need in needs:
            if need == name:
                problems.append((name, "depends on itself"))
            elif need not in deps:
                known = ", ".join(deps) or "none"
                problems.append((name, f"depends_on {need!r}, which does not exist (known: {known})"))
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(deps, white)
    reported: set[frozenset[str]] = set()
    for root in deps:
        if color[root] != white:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        color[root] = grey
        while stack:
            node, i = stack[-1]
            needs = [n for n in deps[node] if n in deps and n != node]
            if i < len(needs):
                stack[-1] = (node, i + 1)
                nxt = needs[i]
                if color[nxt] == grey:
                    cycle = path[path.index(nxt):]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        problems.append((nxt, "dependency cycle: " + " -> ".join([*cycle, nxt])))
                elif color[nxt] == white:
                    color[nxt] = grey
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                color[node] = black
                stack.pop()
                path.pop()
    return problems


def topological_order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """The names in an order where each comes after what it depends on (file order among equals);
    ValueError on a cycle or an unknown name."""
    if graph_problems(deps):
        raise ValueError("; ".join(m for _, m in graph_problems(deps)))
    done: list[str] = []
    seen: set[str] = set()
    remaining = list(deps)
    while remaining:
        for name in remaining:
            if all(n in seen for n in deps[name]):
                done.append(name)
                seen.add(name)
                remaining.remove(name)
                break
    return done
