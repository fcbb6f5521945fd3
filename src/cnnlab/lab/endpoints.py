"""The lab's endpoints: the page, the folder's entries and files, the playground (new, actions,
code, live updates), a run (details, live history, confusion-matrix cells, explain one image)
and a study (details, live updates)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from .. import runs
from ..errors import CnnlabError
from . import workspace
from .playground import Playground, PlaygroundSettings
from .web import event_stream, handles_errors, json_body, off_thread, path_param, sse, state_of

STATIC = Path(__file__).parent / "static"
PUSH_INTERVAL = 0.03  # seconds between two checks of a playground for a new update
WATCH_INTERVAL = 0.5  # seconds between two checks of a run's or study's files


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
