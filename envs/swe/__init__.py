"""SWE: fix a bug in a small Python project with tools inside a sandbox (``turngym/SWE-v0``).

Heavy parts (docker SDK) are imported only when the docker backend is used.
"""

from turngym.envs.swe.env import SWEEnv

__all__ = ["SWEEnv"]
