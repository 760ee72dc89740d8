"""WebShop: a WebShop-like shopping env over a real HTTP shop server (text or browser mode).

Pieces: :mod:`~envs.webshop.catalog` (products, generator, JSON io), :mod:`~envs.webshop.goals`
(instructions and splits), :mod:`~envs.webshop.reward` (the scoring rule),
:mod:`~envs.webshop.server` (the FastAPI shop), :mod:`~envs.webshop.text_client` and
:mod:`~envs.webshop.browser_client` (the two ways to drive it), :mod:`~envs.webshop.env`.
"""

from envs.webshop.env import WebShopEnv

__all__ = ["WebShopEnv"]
