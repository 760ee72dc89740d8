"""WebShop: a WebShop-like shopping env over a real HTTP shop server (text or browser mode).

Pieces: :mod:`~turngym.envs.webshop.catalog` (products, generator, JSON io),
:mod:`~turngym.envs.webshop.goals` (instructions and splits),
:mod:`~turngym.envs.webshop.reward` (the scoring rule), :mod:`~turngym.envs.webshop.server`
(the FastAPI shop), :mod:`~turngym.envs.webshop.text_client` and
:mod:`~turngym.envs.webshop.browser_client` (the two ways to drive it),
:mod:`~turngym.envs.webshop.env`.
"""

from turngym.envs.webshop.env import WebShopEnv

__all__ = ["WebShopEnv"]
