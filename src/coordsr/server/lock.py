"""One server per data folder: an advisory lock on ``<data-dir>/serve.lock``.

A second ``coordsr serve`` on the same folder would mark the first one's queued and running jobs
failed (``Store.fail_interrupted``) and race it on every file. The lock is taken before anything
in the folder is touched; the loser is told who holds it (pid, address, since when) and changes
nothing. The lock is ``flock(2)``: the kernel drops it when its holder dies, even by kill -9, so
a lock file left by a killed server is simply taken over (its old contents are only a note).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from coordsr.errors import CoordsrError

LOCK_NAME = "serve.lock"


class DataDirBusy(CoordsrError):
    """Another live server holds the data folder."""


class DataDirLock:
    """An exclusive lock on a data folder, held from ``acquire`` until ``release`` (or death)."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: Path, address: str = "") -> "DataDirLock":
        """Lock ``data_dir`` (created if missing) for this process; DataDirBusy when another has it.

        ``address`` (the URL this server answers on) is written into the lock file for the
        message a second server shows.
        """
        data_dir = Path(data_dir).expanduser()
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            path = data_dir / LOCK_NAME
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise CoordsrError(f"{data_dir}: cannot use as the data folder: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_note(fd))
            os.close(fd)
            raise DataDirBusy(f"{data_dir}: in use by another coordsr server ({holder}); stop it or "
                              f"choose another --data-dir") from None
        except OSError as exc:
            os.close(fd)
            raise CoordsrError(f"{path}: cannot lock: {exc.strerror or exc}") from None
        lock = cls(path, fd)
        lock.set_address(address)
        return lock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def set_address(self, address: str) -> None:
        """(Re)write the note a second server reads: this pid, machine, address and start time."""
        if self._fd is None:
            return
        note = {"pid": os.getpid(), "host": socket.gethostname(), "address": address,
                "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, (json.dumps(note) + "\n").encode(), 0)

    def release(self) -> None:
        """Give the folder up (idempotent). The file stays: removing it would race a new holder."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor drops the flock

    def __del__(self):  # a forgotten lock is not kept for the life of the process
        self.release()


def _read_note(fd: int) -> dict:
    try:
        note = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return note if isinstance(note, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(note: dict) -> str:
    """'pid 123 at http://127.0.0.1:7860/ since ...' from the holder's note, as far as it goes."""
    parts = [f"pid {note['pid']}" if note.get("pid") else "pid unknown"]
    if note.get("host") and note["host"] != socket.gethostname():
        parts.append(f"on {note['host']}")
    if note.get("address"):
        parts.append(f"at {note['address']}")
    if note.get("since"):
        parts.append(f"since {note['since']}")
    return " ".join(parts)


__all__ = ["DataDirBusy", "DataDirLock", "LOCK_NAME"]
