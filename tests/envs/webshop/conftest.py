"""Fixtures: one real shop server on a free loopback port for the whole test session."""

from __future__ import annotations

import pytest

from turngym.envs.webshop.server import ShopServer, start_server


@pytest.fixture(scope="session")
def shop() -> ShopServer:
    server = start_server()
    yield server
    server.stop()


@pytest.fixture()
def text_env(shop: ShopServer):
    from turngym.envs.webshop import WebShopEnv

    env = WebShopEnv(mode="text", split="all", server_url=shop.url)
    yield env
    env.close()
