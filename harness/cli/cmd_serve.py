"""``turngym serve``: the policy server, and the ``serve`` group's subcommands.

* ``turngym serve [--model ...]`` (no subcommand): an OpenAI-compatible policy server on
  127.0.0.1 (see ``turngym.agents.serve_hf``).
* ``turngym serve retriever --index DIR``: the shared BM25 retriever of the Search env.
* Other modules add servers to the same group (:mod:`turngym.harness.cli.serve_group`), e.g.
  ``cmd_serve_webshop.py`` adds ``turngym serve webshop``. This module mounts the group.

Each of them prints ``serving WHAT on http://HOST:PORT  (Ctrl-C to stop)`` on stderr once
its socket listens (:func:`turngym.harness.cli.serve_group.print_banner`), with the port
``--port 0`` got.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from turngym.errors import ConfigError
from turngym.harness.cli.serve_group import http_url, print_banner, serve_app

if TYPE_CHECKING:
    import socket

    import uvicorn


def register(app: typer.Typer) -> None:
    """Mount the ``serve`` group (with the policy server as its bare invocation)."""
    app.add_typer(serve_app, name="serve")


@serve_app.callback(invoke_without_command=True)
def serve_cmd(
    ctx: typer.Context,
    model: str | None = typer.Option(None, help="Local HF dir, training run dir (its "
                                        "newest checkpoint), 'default' or 'tiny'."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    backend: str = typer.Option("hf", help="Backend that generates: hf or vllm."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16 or float16."),
    max_model_len: int = typer.Option(2048, help="Prompt + response token limit."),
) -> None:
    """Serve a model at http://HOST:PORT/v1 (/v1/models, /v1/completions with token ids,
    logprobs and echo) for the `openai` backend or any OpenAI client. Subcommands serve
    other things (retriever, webshop)."""
    if ctx.invoked_subcommand is not None:
        return
    from turngym.agents.serve_hf import serve
    from turngym.harness.runs import run_model_dir

    path = run_model_dir(model)
    with _banner_once_listening(f"model {path or 'default'} ({backend} backend)", "/v1"):
        serve(path, host=host, port=port, backend=backend, dtype=dtype,
              max_model_len=max_model_len)


@contextlib.contextmanager
def _banner_once_listening(what: str, path: str) -> Iterator[None]:
    """Inside, a uvicorn server prints :func:`print_banner` as soon as it listens.

    ``turngym.agents.serve_hf.serve`` binds its socket inside ``uvicorn.run``, so the port that
    ``--port 0`` got can only be read from the started server: this wraps
    ``uvicorn.Server.startup`` for the duration (the CLI process runs one server)."""
    import uvicorn

    startup = uvicorn.Server.startup

    async def startup_then_banner(self: uvicorn.Server, sockets: list[socket.socket] | None = None
                                  ) -> None:
        await startup(self, sockets=sockets)
        listening = [s for server in getattr(self, "servers", []) for s in server.sockets]
        if getattr(self, "started", False) and listening:
            print_banner(what, http_url(self.config.host, listening[0].getsockname()[1]) + path)

    uvicorn.Server.startup = startup_then_banner  # type: ignore[method-assign]
    try:
        yield
    finally:
        uvicorn.Server.startup = startup  # type: ignore[method-assign]


@serve_app.command("retriever")
def retriever(
    index: Path | None = typer.Option(None, "--index", help="A saved index folder "
                                      "(e.g. envs/search/data/corpus.bm25s)."),
    corpus: Path | None = typer.Option(None, "--corpus", help="Build (once) or load the "
                                       "index of this JSONL corpus instead; default: the "
                                       "shipped corpus."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)."),
    port: int = typer.Option(8531, help="Port; 0 picks a free one."),
    max_batch: int = typer.Option(256, min=1, help="Most queries merged into one BM25 call."),
) -> None:
    """Serve BM25 search over HTTP for many env workers (POST /search, GET /health).
    Prints ``retriever: N passages at URL`` as its first stdout line, and the serve banner
    on stderr."""
    from turngym.envs.search.index import open_index, open_index_dir
    from turngym.envs.search.server import bind_socket, make_server

    if index is not None and corpus is not None:
        raise ConfigError("give --index or --corpus, not both")
    if index is not None:
        if not (index / "turngym_index.json").is_file():
            raise ConfigError(f"--index {index} is not a saved index folder (no "
                              "turngym_index.json); pass --corpus FILE to build one")
        idx = open_index_dir(index)
    else:
        from turngym.envs.search.corpus import SHIPPED_CORPUS

        idx = open_index(corpus or SHIPPED_CORPUS)
    sock = bind_socket(host, port)  # listening: requests queue until the server runs
    url = http_url(host, sock.getsockname()[1])
    typer.echo(f"retriever: {len(idx)} passages at {url}")  # first stdout line, for scripts
    print_banner(f"the BM25 retriever ({len(idx)} passages)", url)
    make_server(idx, max_batch).run(sockets=[sock])
