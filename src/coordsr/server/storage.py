"""Job records in SQLite (stdlib sqlite3) and job files in the data folder.

The data folder holds ``coordsr.sqlite3`` and one folder per job, ``jobs/<id>/``, named by the
job's random hex id: a file name from an upload is kept only as a label (sanitised) and is never
part of a path. A record is the truth about a job; its folder holds what the job made:

    input.png          the decoded upload, re-encoded losslessly at its bit depth
    thumb.png          a small 8-bit picture of the input for the gallery
    result.png         the upscaled image, at the input's bit depth
    bicubic.png        the same size by bicubic interpolation, for the before/after slider
    field.safetensors  the fitted field (methods with ``fits_field`` only)

A job's ``kind`` says what it makes. 'upscale' jobs are the above; art jobs (the Art page's
posters and animations, server/art.py) have no input: their folder holds ``thumb.png`` (a small
still of the picture) and ``result.png`` (a poster, its settings in a PNG text chunk) or
``result.gif`` (an animation). Records stored before kinds existed are upscale jobs.
"""

from __future__ import annotations

import errno
import json
import re
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

STATUSES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
ID_RE = re.compile(r"[0-9a-f]{16}")
KINDS = ("upscale", "art-poster", "art-animation")
SCHEMA_VERSION = 3
"""1: the first table; 2: the ``kind`` column (older tables gain it, as 'upscale', on open);
3: the ``content`` and ``choice`` columns (what the picture was taken for, and why that model:
older tables gain them, empty, on open)."""


STORAGE_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                  errno.EROFS: "read-only file system"}


def storage_refused(exc: BaseException | None) -> str | None:
    """Why the disk refused a write, when ``exc`` (or an exception it was raised from or while
    handling) is that: an OSError ENOSPC / EDQUOT / EROFS, or SQLite's "database or disk is full"
    or "readonly database"; None for any other error. The server answers these with 507.

    >>> storage_refused(OSError(errno.ENOSPC, "No space left on device"))
    'no space left on the device'
    >>> storage_refused(sqlite3.OperationalError("database or disk is full")), storage_refused(KeyError(1))
    ('database or disk is full', None)
    """
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return STORAGE_ERRNOS[exc.errno]
        if isinstance(exc, sqlite3.Error):
            text = str(exc).lower()
            if "full" in text or "readonly" in text or "read-only" in text:
                return str(exc)
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def new_job_id() -> str:
    """16 random hex digits: the job's name in URLs and on disk."""
    return secrets.token_hex(8)


def safe_label(name: str | None, default: str = "image") -> str:
    """A display label from an uploaded file name: its stem, restricted to [A-Za-z0-9._-], 60 chars."""
    stem = Path(str(name or "")).name.rsplit(".", 1)[0] if name else ""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:60]
    return stem or default


@dataclass
class JobRecord:
    """One row of the ``jobs`` table."""

    id: str
    """Random hex id (``new_job_id``)."""
    label: str
    """Sanitised stem of the uploaded file's name: shown in the page and in download names."""
    method: str
    """Registry name of the upscaler."""
    settings: dict
    """Settings passed to the upscaler's constructor (steps, seed, fit ...)."""
    in_width: int
    in_height: int
    channels: int
    mode: str
    """'L', 'LA', 'RGB' or 'RGBA'."""
    bit_depth: int
    out_width: int
    out_height: int
    status: str = "queued"
    """One of STATUSES."""
    created: float = field(default_factory=time.time)
    """Unix time the upload was received."""
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    """Why the job failed, one line."""
    step: int = 0
    """Steps done at the last report."""
    total: int = 0
    """Steps planned at the last report."""
    psnr: float | None = None
    """PSNR (dB) of the fit on the input pixels, last report."""
    has_field: bool = False
    """True when field.safetensors was written."""
    first_preview_s: float | None = None
    """Seconds from the upload's arrival to the first live preview."""
    kind: str = "upscale"
    """One of KINDS: what the job makes (an upscaled image, an art poster or an art animation)."""
    content: str | None = None
    """What the picture was taken for (coordsr.content: 'photo', 'drawing' or 'pixel-art'), detected
    or as the client said; None when the client named the method, for art jobs and older records."""
    choice: str | None = None
    """Which model ran and why, in plain words ('Drawing model: detected a drawing (...)')."""

    @property
    def result_file(self) -> str:
        """The name of the job's result in its folder."""
        return "result.gif" if self.kind == "art-animation" else "result.png"

    def download_name(self, suffix: str | None = None, extra: str = "") -> str:
        """The file name a download of the result gets: label, what made it, size."""
        suffix = suffix or self.result_file.rsplit(".", 1)[1]
        size = f"{self.out_width}x{self.out_height}{extra}"
        if self.kind == "art-poster":
            return f"{self.label}-{size}.{suffix}"
        if self.kind == "art-animation":
            return f"{self.label}-{self.settings.get('animation', 'animation')}-{size}.{suffix}"
        return f"{self.label}-{self.method}-{size}.{suffix}"


_COLUMNS = [f.name for f in fields(JobRecord)]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    method TEXT NOT NULL,
    settings TEXT NOT NULL,
    in_width INTEGER NOT NULL,
    in_height INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    mode TEXT NOT NULL,
    bit_depth INTEGER NOT NULL,
    out_width INTEGER NOT NULL,
    out_height INTEGER NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    error TEXT,
    step INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    psnr REAL,
    has_field INTEGER NOT NULL DEFAULT 0,
    first_preview_s REAL,
    kind TEXT NOT NULL DEFAULT 'upscale',
    content TEXT,
    choice TEXT
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
"""


class Store:
    """The job table and the job folders. Thread-safe: one connection behind a lock."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir).expanduser()
        self.jobs_dir = self.data_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.data_dir / "coordsr.sqlite3", check_same_thread=False,
                                   isolation_level=None)  # autocommit: each statement is durable
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            have = {r["name"] for r in self._db.execute("PRAGMA table_info(jobs)")}
            if "kind" not in have:  # a table from schema 1: every job in it was an upscale
                self._db.execute("ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'upscale'")
            for column in ("content", "choice"):  # schema 3: NULL for the jobs stored before
                if column not in have:
                    self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} TEXT")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- folders -----------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        if not ID_RE.fullmatch(job_id):  # ids come from URLs: never let one name another path
            raise ValueError(f"not a job id: {job_id!r}")
        return self.jobs_dir / job_id

    # --- records -----------------------------------------------------------------------------

    def insert(self, rec: JobRecord) -> None:
        row = self._to_row(rec)
        with self._lock:
            self._db.execute(f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             list(row.values()))

    def update(self, job_id: str, **changes) -> None:
        if not changes:
            return
        bad = set(changes) - set(_COLUMNS)
        if bad:
            raise ValueError(f"unknown job columns: {sorted(bad)}")
        row = self._to_row(changes)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in row)} WHERE id = ?",
                             [*row.values(), job_id])

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._from_row(row) if row else None

    def list(self, limit: int = 200) -> list[JobRecord]:
        """Newest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [self._from_row(r) for r in rows]

    def delete(self, job_id: str) -> bool:
        """Remove the record and the job's folder; False when there was no such job.

        On a full disk the row cannot be deleted (SQLite writes to delete): the folder goes first,
        which frees its space, and the row is tried once more; the error is raised when it still
        fails (the job's files are gone then, its record stays until a later delete)."""
        folder = self.job_dir(job_id)
        try:
            with self._lock:
                cur = self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        except sqlite3.Error as exc:
            if storage_refused(exc) is None:
                raise
            shutil.rmtree(folder, ignore_errors=True)
            with self._lock:
                cur = self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        shutil.rmtree(folder, ignore_errors=True)
        return cur.rowcount > 0

    def fail_interrupted(self) -> list[str]:
        """Mark jobs left queued or running by a crash or restart as failed; returns their ids.

        Called once when the server starts, before any worker runs, so nothing is really running.
        """
        now = time.time()
        with self._lock:
            rows = self._db.execute("SELECT id, status FROM jobs WHERE status IN ('queued', 'running')").fetchall()
            for r in rows:
                why = ("interrupted: the server stopped while this job was running" if r["status"] == "running"
                       else "interrupted: the server stopped before this job started")
                self._db.execute("UPDATE jobs SET status = 'failed', error = ?, finished = ? WHERE id = ?",
                                 (why, now, r["id"]))
        for r in rows:  # half-written files of the interrupted run
            for tmp in self.job_dir(r["id"]).glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        return [r["id"] for r in rows]

    # --- rows <-> records ----------------------------------------------------------------------

    @staticmethod
    def _to_row(rec: JobRecord | dict) -> dict:
        row = asdict(rec) if isinstance(rec, JobRecord) else dict(rec)
        if "settings" in row:
            row["settings"] = json.dumps(row["settings"])
        if "has_field" in row:
            row["has_field"] = int(bool(row["has_field"]))
        return row

    @staticmethod
    def _from_row(row: sqlite3.Row) -> JobRecord:
        d = {k: row[k] for k in _COLUMNS}
        d["settings"] = json.loads(d["settings"])
        d["has_field"] = bool(d["has_field"])
        return JobRecord(**d)
