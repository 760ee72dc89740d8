"""Search: multi-hop QA over a BM25-indexed corpus with ``search`` and ``answer`` tools."""

from turngym.envs.search.env import SearchEnv

__all__ = ["SearchEnv"]
