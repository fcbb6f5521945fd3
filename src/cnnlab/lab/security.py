"""The lab's guard, as Jupyter's: the Host header must name this server, an Origin header must be
its own, cross-site requests are refused, and every request carries the token (query, header or
the cookie the first visit sets)."""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .state import LabState


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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
