"""``cnnlab lab [DIR]``: a local web lab (Starlette app served by uvicorn) over the engine and DIR's
runs.

Security, as Jupyter: the server binds 127.0.0.1 unless told otherwise; the first URL
carries a random token that sets a cookie; every request needs that cookie (or the token
as ``?token=`` or an ``X-Cnnlab-Token`` header); the Host header must name this server
and an Origin header, when present, must be this server's own (so another site's page
cannot drive it, nor reach it through DNS rebinding). Every file path is resolved inside
DIR and refused with 403 when it leaves it. Assets come from the installed package.

Updates reach the page as server-sent events (``text/event-stream``): the playground's
training thread and the watched run and study files are checked here, on the server.

Modules: ``state.py`` (LabState), ``security.py`` (the Guard middleware), ``web.py`` (what the
endpoints share), ``endpoints.py`` (the API), ``uvicorn_server.py`` (start and stop); this module
builds the app and serves it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import CnnlabError
from .endpoints import (
    STATIC,
    entries,
    not_found,
    page,
    playground_action,
    playground_code,
    playground_events,
    playground_new,
    root_file,
    run_cell,
    run_details,
    run_events,
    run_explain,
    study_details,
    study_events,
)
from .security import Guard, is_loopback
from .state import LabState

__all__ = ["Guard", "LabState", "check_port_free", "create_app", "is_loopback", "serve"]


def create_app(
    root: str | Path, token: str | None = None, host: str = "127.0.0.1", port: int = 8765
) -> Starlette:
    """The lab as an ASGI app over ``root`` (created if missing)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    state = LabState(root=root, host=host, port=port, **({"token": token} if token else {}))
    routes = [
        Route("/", page),
        Route("/playground", page),
        Route("/run", page),
        Route("/study", page),
        Route("/api/entries", entries),
        Route("/api/file", root_file),
        Route("/api/playground", playground_new, methods=["POST"]),
        Route("/api/playground/{session}/events", playground_events),
        Route("/api/playground/{session}/code", playground_code),
        Route("/api/playground/{session}/{action}", playground_action, methods=["POST"]),
        Route("/api/run", run_details),
        Route("/api/run/events", run_events),
        Route("/api/run/cell", run_cell),
        Route("/api/run/explain", run_explain, methods=["POST"]),
        Route("/api/study", study_details),
        Route("/api/study/events", study_events),
        Route("/api/{rest:path}", not_found, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.lab = state
    app.add_middleware(Guard, state=state)
    return app


def serve(
    root: str | Path = "runs",
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = True,
    echo: Callable[[str], None] = print,
) -> None:
    """Run the lab until Ctrl-C; prints the URL with its token
    (and opens it unless ``open_browser`` is False)."""
    from .uvicorn_server import LabServer, uvicorn_config

    app = create_app(root, host=host, port=port)
    state: LabState = app.state.lab
    if not is_loopback(host):
        echo(
            f"warning: the lab listens on {host}: other machines can reach it; anyone with the "
            "token can run code "
            "on this machine's CPU and read and write the runs in its folder"
        )
    check_port_free(host, port)
    LabServer(uvicorn_config(app, host, port), state, open_browser, echo).run()


def check_port_free(host: str, port: int) -> None:
    """CnnlabError with a hint when ``host:port`` cannot be listened on
    (another lab, another server)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise CnnlabError(
                f"cannot listen on {host}:{port} ({err.strerror}): check --host, or give another "
                "--port "
                "(--port 0: any free one)"
            ) from None
