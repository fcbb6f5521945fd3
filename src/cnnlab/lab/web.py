"""What the lab's endpoints share: the state of the app, user errors as 4xx JSON, request bodies
and parameters, work off the event loop, and server-sent event streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..errors import CnnlabError
from . import workspace
from .state import LabState

MAX_BODY = 8_000_000


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
