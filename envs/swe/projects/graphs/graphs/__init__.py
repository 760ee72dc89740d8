"""graphs: small graph algorithms over adjacency dicts."""

from graphs.algorithms import components, has_cycle, shortest_path, topological_sort, undirected

__all__ = ["components", "has_cycle", "shortest_path", "topological_sort", "undirected"]
