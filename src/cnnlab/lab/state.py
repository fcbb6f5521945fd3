"""What the lab serves (``LabState``): its folder, its token, the host names it answers to, the open
playgrounds (the least recently used dropped beyond ``MAX_SESSIONS``) and the runs' models."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from .. import runs
from . import workspace
from .modelview import RunModel
from .playground import Playground

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
MAX_SESSIONS = 8  # playgrounds kept at once; the least recently used one is dropped


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
