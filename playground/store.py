"""The run store: every run's inputs as sent, request body, result, heat map and record, in a folder of its own.

A run is named by an opaque `run_id` (a random token); nothing a caller passes can reach a file outside a run
that this store created, and runs older than the store's lifetime are removed by a sweep apart from the runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

RUN_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
META = "meta.json"


def owner_tag(token: str) -> str:
    """What a run keeps of the browser (or caller) that created it: a hash, so the folder holds no token."""
    return hashlib.sha256(f"playground-owner:{token}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Run:
    run_id: str
    folder: Path

    def path(self, name: str) -> Path:
        if not FILE_NAME.match(name) or name == META:
            raise ValueError(f"{name!r} is not a run file name")
        return self.folder / name

    def write(self, name: str, data: bytes) -> Path:
        path = self.path(name)
        _atomic_write(path, data)
        return path

    def read(self, name: str) -> bytes | None:
        try:
            return self.path(name).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    def has(self, name: str) -> bool:
        try:
            return self.path(name).is_file()
        except ValueError:
            return False

    def find(self, stem: str) -> Path | None:
        """The run's file called `stem` with whatever extension it was saved under."""
        for path in sorted(self.folder.glob(f"{stem}.*")):
            if FILE_NAME.match(path.name) and path.is_file():
                return path
        return None

    def write_json(self, name: str, data: object) -> Path:
        return self.write(name, json.dumps(data, indent=1, sort_keys=True).encode())

    def read_json(self, name: str) -> dict | None:
        raw = self.read(name)
        try:
            value = json.loads(raw) if raw else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    @property
    def meta(self) -> dict:
        try:
            value = json.loads((self.folder / META).read_bytes())
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def update(self, **changes: object) -> dict:
        """Merge `changes` into the run's metadata; one writer per run, so read-modify-write is safe."""
        meta = {**self.meta, **changes}
        _atomic_write(self.folder / META, json.dumps(meta, sort_keys=True).encode())
        return meta


class RunStore:
    """Owns the run folders under `root` and their expiry."""

    def __init__(self, root: str | os.PathLike, ttl_s: float = 24 * 3600):
        self.root = Path(root)
        self.ttl_s = ttl_s
        self.root.mkdir(parents=True, exist_ok=True)
        self._sweeper: threading.Thread | None = None

    def create(self, owner: str, **meta: object) -> Run:
        """A new run with a folder of its own; `owner` is the creating browser's token (kept only as a hash)."""
        while True:
            run_id = secrets.token_urlsafe(16)
            folder = self.root / run_id
            try:
                folder.mkdir()
                break
            except FileExistsError:  # a 128-bit collision: take another token
                continue
        run = Run(run_id, folder)
        run.update(owner=owner_tag(owner), created_at=time.time(), **meta)
        return run

    def get(self, run_id: object, owner: str | None = None) -> Run | None:
        """The run named `run_id`, or None when it is malformed, unknown, expired, or (with `owner`) someone
        else's. The id is checked against its pattern before it comes anywhere near a path."""
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            return None
        folder = self.root / run_id
        if not folder.is_dir() or folder.is_symlink():
            return None
        run = Run(run_id, folder)
        meta = run.meta
        if not meta or time.time() - float(meta.get("created_at") or 0) > self.ttl_s:
            return None
        if owner is not None and meta.get("owner") != owner_tag(owner):
            return None
        return run

    def sweep(self, now: float | None = None) -> int:
        """Remove expired runs; safe to run while other sweeps and runs go on."""
        now = time.time() if now is None else now
        removed = 0
        for folder in list(self._folders()):
            created = Run(folder.name, folder).meta.get("created_at")
            try:
                age_from = float(created) if created is not None else folder.stat().st_mtime
            except (OSError, TypeError, ValueError):
                continue
            if now - age_from > self.ttl_s:
                shutil.rmtree(folder, ignore_errors=True)
                removed += not folder.exists()
        return removed

    def start_sweeping(self, every_s: float = 600.0) -> None:
        """Sweep in a background thread, so no run pays for the clean-up."""
        if self._sweeper is not None:
            return

        def loop():
            while True:
                with contextlib.suppress(OSError):
                    self.sweep()
                time.sleep(every_s)

        self._sweeper = threading.Thread(target=loop, name="run-store-sweeper", daemon=True)
        self._sweeper.start()

    def _folders(self):
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return
        for entry in entries:
            if RUN_ID.match(entry.name) and entry.is_dir() and not entry.is_symlink():
                yield entry


def state_secret(root: str | os.PathLike, configured: str | None = None) -> str:
    """The secret the browser's stored state is encrypted with: the configured one, else one generated once and
    kept beside the runs, so that a job can be resumed after the app restarts."""
    if configured:
        return configured
    path = Path(root) / ".browser-state-secret"
    with contextlib.suppress(FileNotFoundError):
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_urlsafe(24)
    Path(root).mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first: use theirs
        return path.read_text().strip() or value
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


def default_root() -> Path:
    return Path(tempfile.gettempdir()) / "segmind-playground-runs"


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
