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
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import socket
import threading
import time
import webbrowser
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import runs
from ..errors import CnnlabError
from . import workspace
from .modelview import RunModel
from .playground import Playground, PlaygroundSettings

STATIC = Path(__file__).parent / "static"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
MAX_SESSIONS = 8  # playgrounds kept at once; the least recently used one is dropped
PUSH_INTERVAL = 0.03  # seconds between two checks of a playground for a new update
WATCH_INTERVAL = 0.5  # seconds between two checks of a run's or study's files
MAX_BODY = 8_000_000


@dataclass
class LabState:
    """What the app serves: its folder, its token, the names it answers to, the open playgrounds and
    models."""

    root: Path
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    host: str = "127.0.0.1"
    port: int = 8765
    sessions: OrderedDict[str, Playground] = field(default_factory=OrderedDict)
    models: dict[tuple[Path, float], RunModel] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: bool = False

    @property
    def cookie_name(self) -> str:
        return f"cnnlab_lab_{self.port}"

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}?token={self.token}"

    def allows_host(self, hostname: str) -> bool:
        """Loopback names always; the bound host when it is not loopback; any name when bound to all
        interfaces."""
        return hostname in LOOPBACK_NAMES or hostname == self.host or self.host in ("0.0.0.0", "::")

    def playground(self, session: str) -> Playground:
        with self.lock:
            if session not in self.sessions:
                raise workspace.NotFound(f"no playground session {session!r}; reload the page")
            self.sessions.move_to_end(session)
            return self.sessions[session]

    def add_playground(self, playground: Playground) -> str:
        session = secrets.token_hex(8)
        with self.lock:
            self.sessions[session] = playground
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)[1].stop()
        return session

    def run_model(self, relative: str) -> RunModel:
        """The run's model, loaded once per version of its model file."""
        path = workspace.run_dir(self.root, relative)
        model_file = path / runs.MODEL_FILE
        if not model_file.is_file():
            raise workspace.NotFound(
                f"run {relative!r} has no trained model yet ({runs.MODEL_FILE} is missing)"
            )
        key = (path, model_file.stat().st_mtime)
        with self.lock:
            if key not in self.models:
                self.models = {k: v for k, v in self.models.items() if k[0] != path}
                self.models[key] = RunModel(path)
            return self.models[key]


# ----------------------------------------------------------------------------- guard
class Guard:
    """ASGI middleware: Host and Origin checks, then the token (query, header or cookie)."""

    def __init__(self, app: ASGIApp, state: LabState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "websocket"
        ):  # the lab pushes by server-sent events; no WebSocket is served
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self.refusal(request)
        if refusal:
            await PlainTextResponse(refusal, status_code=403)(scope, receive, send)
            return
        if (
            request.query_params.get("token")
            and request.method == "GET"
            and not request.url.path.startswith("/api/")
        ):
            await self.login(request)(
                scope, receive, send
            )  # first visit: token -> cookie, token out of the URL
            return
        await self.app(scope, receive, send)

    def refusal(self, request: Request) -> str | None:
        host = request.headers.get("host", "")
        hostname = (
            host.rsplit(":", 1)[0].strip("[]") if not host.endswith("]") else host.strip("[]")
        )
        if not self.state.allows_host(hostname.lower()):
            return f"forbidden: this server does not answer to host {host!r}"
        origin = request.headers.get("origin")
        if origin is not None and origin != f"http://{host}":
            return f"forbidden: requests from origin {origin!r} are refused"
        if request.headers.get("sec-fetch-site") == "cross-site":
            return "forbidden: cross-site request"
        given = (
            request.query_params.get("token")
            or request.headers.get("x-cnnlab-token")
            or request.cookies.get(self.state.cookie_name)
            or ""
        )
        if not secrets.compare_digest(given.encode(), self.state.token.encode()):
            return (
                "forbidden: open the lab with the URL printed by `cnnlab lab` (it carries the "
                "token)"
            )
        return None

    def login(self, request: Request) -> Response:
        query = urlencode(
            [
                (k, v)
                for k, v in parse_qsl(request.url.query, keep_blank_values=True)
                if k != "token"
            ]
        )
        response = RedirectResponse(
            request.url.path + (f"?{query}" if query else ""), status_code=303
        )
        response.set_cookie(
            self.state.cookie_name, self.state.token, httponly=True, samesite="strict"
        )
        return response


# ----------------------------------------------------------------------------- helpers
def state_of(request: Request) -> LabState:
    return request.app.state.lab


def error_response(err: Exception) -> JSONResponse:
    status = (
        403
        if isinstance(err, workspace.OutsideRoot)
        else 404
        if isinstance(err, workspace.NotFound)
        else 400
    )
    return JSONResponse({"error": str(err)}, status_code=status)


def handles_errors(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """User errors (bad expression, missing run, path outside DIR) -> 4xx JSON with the message."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except CnnlabError as err:
            return error_response(err)

    wrapped.__name__ = handler.__name__
    return wrapped


async def json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise CnnlabError(f"request body larger than {MAX_BODY:,} bytes")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise CnnlabError("the request body is not JSON") from None
    if not isinstance(data, dict):
        raise CnnlabError("the request body must be a JSON object")
    return data


def path_param(request: Request) -> str:
    path = request.query_params.get("path")
    if path is None:
        raise CnnlabError("give the run or study as ?path=NAME (relative to the lab's folder)")
    return path


async def off_thread(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


def event_stream(request: Request, events: AsyncIterator[str]) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        async for data in events:
            if state_of(request).stopping:
                break
            yield data

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


def sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


# ----------------------------------------------------------------------------- pages
async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


@handles_errors
async def entries(request: Request) -> Response:
    return JSONResponse(
        {
            "root": str(state_of(request).root),
            "entries": await off_thread(workspace.list_entries, state_of(request).root),
        }
    )


@handles_errors
async def root_file(request: Request) -> Response:
    """A file inside DIR (a run's figures or report.html)."""
    path = workspace.resolve_inside(state_of(request).root, path_param(request))
    if not path.is_file():
        raise workspace.NotFound(f"no file {path_param(request)!r} in the lab's folder")
    return FileResponse(path)


# ----------------------------------------------------------------------------- playground
@handles_errors
async def playground_new(request: Request) -> Response:
    body = await json_body(request)
    given = body.get("settings", {})
    if not isinstance(given, dict):
        raise CnnlabError('give the settings as {"settings": {"function": "ring-band", ...}}')
    settings = PlaygroundSettings.from_query({k: str(v) for k, v in given.items()})
    playground = await off_thread(Playground, settings)
    session = state_of(request).add_playground(playground)
    return JSONResponse({"session": session, "setup": playground.setup()})


@handles_errors
async def playground_action(request: Request) -> Response:
    playground = state_of(request).playground(request.path_params["session"])
    action = request.path_params["action"]
    if action == "run":
        playground.start()
    elif action == "pause":
        playground.pause()
    elif action == "step":
        playground.pause()
        await off_thread(playground.step)
    elif action == "reset":
        playground.pause()
        await off_thread(playground.reset)
    elif action == "save":
        state = state_of(request)
        name = (
            "expression"
            if playground.function.name == playground.function.formula
            else playground.function.name
        )
        run_dir = await off_thread(
            playground.save_run, runs.default_run_dir(f"playground-{name}", state.root)
        )
        return JSONResponse({"run": workspace.relative_name(state.root, run_dir)})
    else:
        raise workspace.NotFound(
            f"unknown playground action {action!r}: use run, pause, step, reset or save"
        )
    return JSONResponse({"ok": True, "running": playground.running})


@handles_errors
async def playground_code(request: Request) -> Response:
    playground = state_of(request).playground(request.path_params["session"])
    return PlainTextResponse(playground.export_code())


@handles_errors
async def playground_events(request: Request) -> Response:
    playground = state_of(request).playground(request.path_params["session"])

    async def updates() -> AsyncIterator[str]:
        seen = -1
        try:
            while not playground.stopped:
                if playground.version != seen:
                    seen = playground.version
                    yield sse("update", playground.latest)
                else:
                    yield ""
                await asyncio.sleep(PUSH_INTERVAL)
        finally:
            playground.pause()  # nobody watches: stop training

    return event_stream(request, updates())


# ----------------------------------------------------------------------------- runs
@handles_errors
async def run_details(request: Request) -> Response:
    state = state_of(request)
    details = await off_thread(workspace.run_details, state.root, path_param(request))
    if details["has_model"]:
        model = await off_thread(state.run_model, path_param(request))
        details.update(
            arithmetic=model.arithmetic(),
            image_model=model.is_image_model,
            input_shape=list(model.model.input_shape),
        )
    return JSONResponse(details)


@handles_errors
async def run_events(request: Request) -> Response:
    root = state_of(request).root
    path = workspace.run_dir(root, path_param(request))

    async def updates() -> AsyncIterator[str]:
        stamp = None
        while True:
            now = workspace.history_stamp(path)
            if now != stamp:
                stamp = now
                history = await off_thread(workspace.live_history, path)
                yield sse(
                    "history",
                    json.dumps({"history": history, "status": workspace.run_status(path)}),
                )
            else:
                yield ""
            await asyncio.sleep(WATCH_INTERVAL)

    return event_stream(request, updates())


@handles_errors
async def run_cell(request: Request) -> Response:
    model = await off_thread(state_of(request).run_model, path_param(request))
    try:
        true, predicted = int(request.query_params["true"]), int(request.query_params["predicted"])
    except (KeyError, ValueError):
        raise CnnlabError("give the cell as ?true=I&predicted=J (class indices)") from None
    return JSONResponse(await off_thread(model.cell_images, true, predicted))


@handles_errors
async def run_explain(request: Request) -> Response:
    """One image -> prediction and what the network computes: a test image (index), a drawing or an
    upload."""
    model = await off_thread(state_of(request).run_model, path_param(request))
    body = await json_body(request)
    true = None
    if "index" in body:
        if not isinstance(body["index"], int) or isinstance(body["index"], bool):
            raise CnnlabError(
                f"the test image number must be an integer, received {body['index']!r}"
            )
        image, label = await off_thread(model.test_image, body["index"])
        true = model.class_names[label]
    elif "image" in body:
        image = await off_thread(
            model.prepare_image, str(body["image"]), body.get("source") == "draw"
        )
    else:
        raise CnnlabError(
            'give a test image as {"index": N} or an image as {"image": '
            '"data:image/png;base64,..."}'
        )
    started = time.perf_counter()
    result = await off_thread(model.explain, image)
    result.update(true=true, milliseconds=round((time.perf_counter() - started) * 1000, 1))
    return JSONResponse(result)


# ----------------------------------------------------------------------------- studies
@handles_errors
async def study_details(request: Request) -> Response:
    return JSONResponse(
        await off_thread(workspace.study_details, state_of(request).root, path_param(request))
    )


@handles_errors
async def study_events(request: Request) -> Response:
    state = state_of(request)
    relative = path_param(request)
    database = workspace.study_path(state.root, relative)

    async def updates() -> AsyncIterator[str]:
        stamp = None
        while True:
            now = workspace.study_stamp(database)
            if now != stamp:
                stamp = now
                try:
                    details = await off_thread(workspace.study_details, state.root, relative)
                except CnnlabError:
                    details = None  # caught mid-write: try again at the next check
                    stamp = None
                if details is not None:
                    yield sse("study", json.dumps(details))
            else:
                yield ""
            await asyncio.sleep(WATCH_INTERVAL)

    return event_stream(request, updates())


async def not_found(request: Request) -> Response:
    return JSONResponse({"error": f"no such API endpoint: {request.url.path}"}, status_code=404)


# ----------------------------------------------------------------------------- the app
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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    root: str | Path = "runs",
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = True,
    echo: Callable[[str], None] = print,
) -> None:
    """Run the lab until Ctrl-C; prints the URL with its token
    (and opens it unless ``open_browser`` is False)."""
    import uvicorn

    app = create_app(root, host=host, port=port)
    state: LabState = app.state.lab
    if not is_loopback(host):
        echo(
            f"warning: the lab listens on {host}: other machines can reach it; anyone with the "
            "token can run code "
            "on this machine's CPU and read and write the runs in its folder"
        )

    class LabServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                state.port = (
                    self.servers[0].sockets[0].getsockname()[1]
                )  # the real port when 0 was asked for
                echo(f"cnnlab lab: serving {state.root} at {state.url()}")
                if open_browser:
                    threading.Thread(
                        target=webbrowser.open, args=(state.url(),), daemon=True
                    ).start()

        async def shutdown(self, sockets: Any = None) -> None:
            state.stopping = True
            for playground in list(state.sessions.values()):
                playground.stop()
            await super().shutdown(sockets)

    check_port_free(host, port)
    config = uvicorn.Config(
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
    LabServer(config).run()


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
