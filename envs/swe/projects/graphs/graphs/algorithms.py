"""Graphs are dicts mapping a node to the list of its successors."""

from collections import deque


def undirected(edges):
    """An adjacency dict with both directions of every ``(a, b)`` edge."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, []).append(a)
    return graph


def shortest_path(graph, start, goal):
    """Fewest-edges path from ``start`` to ``goal`` as a node list, or None."""
    if start == goal:
        return [start]
    parent = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in graph.get(node, []):
            if nxt in parent:
                continue
            parent[nxt] = node
            if nxt == goal:
                path = [nxt]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return path[::-1]
            queue.append(nxt)
    return None


def components(graph):
    """Connected components of an undirected graph, each sorted, sorted by first node."""
    seen = set()
    out = []
    for start in sorted(graph):
        if start in seen:
            continue
        seen.add(start)
        stack = [start]
        comp = []
        while stack:
            node = stack.pop()
            comp.append(node)
            for nxt in graph[node]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        out.append(sorted(comp))
    return out


def topological_sort(graph):
    """Kahn's algorithm, smallest ready node first; ValueError on a cycle."""
    indegree = {node: 0 for node in graph}
    for node in graph:
        for nxt in graph[node]:
            indegree[nxt] = indegree.get(nxt, 0) + 1
    ready = sorted(n for n, d in indegree.items() if d == 0)
    order = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for nxt in graph.get(node, []):
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
                ready.sort()
    if len(order) != len(indegree):
        raise ValueError("graph has a cycle")
    return order


def has_cycle(graph):
    """Whether a directed graph has a cycle."""
    try:
        topological_sort(graph)
    except ValueError:
        return True
    return False
