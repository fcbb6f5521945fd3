"""The lab's uvicorn server: on start it prints the URL with its token (the real port when 0 was
asked for) and opens the browser; on stop it ends every playground's training first. Imported
only by ``serve``, so that importing the lab does not import uvicorn."""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette

from .state import LabState


class LabServer(uvicorn.Server):
    """uvicorn's Server with the lab's start and stop."""

    def __init__(
        self,
        config: uvicorn.Config,
        state: LabState,
        open_browser: bool,
        echo: Callable[[str], None],
    ) -> None:
        super().__init__(config)
        self.state, self.open_browser, self.echo = state, open_browser, echo

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            state = self.state
            state.port = (
                self.servers[0].sockets[0].getsockname()[1]
            )  # the real port when 0 was asked for
            self.echo(f"cnnlab lab: serving {state.root} at {state.url()}")
            if self.open_browser:
                threading.Thread(target=webbrowser.open, args=(state.url(),), daemon=True).start()

    async def shutdown(self, sockets: Any = None) -> None:
        self.state.stopping = True
        for playground in list(self.state.sessions.values()):
            playground.stop()
        await super().shutdown(sockets)


def uvicorn_config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    """Quiet uvicorn: warnings only, no access log, no lifespan, two seconds to shut down."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        # uvicorn's own logging setup would bind handlers to the sys.stderr of the moment
        log_config=None,
        timeout_graceful_shutdown=2,
        lifespan="off",
        access_log=False,
    )
