"""Atomic file output: write beside the target, then rename, so a failed or interrupted run
leaves no partial file and never half-overwrites what the user had.

    with atomic_path(Path("out.field")) as tmp:   # a fresh name in the same folder
        save_file(tensors, tmp)                  # on success: mode 0666 less umask, renamed

One module owns this because every writer (images, fields, art frames, the server's jobs) needs
the same three things: same filesystem (so the rename is atomic), the permissions ``open()``
would give (``mkstemp`` makes files 0600), and clean-up of the temporary on any error.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def new_file_mode(folder: bool = False) -> int:
    """The mode ``open()`` (or ``mkdir``) gives a new file: 0o666 (0o777) less the process umask."""
    base = 0o777 if folder else 0o666
    try:  # Linux shows the umask without changing it; os.umask() would, for every thread at once
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return base & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return base & ~mask


def temp_name(path: Path) -> Path:
    """A hidden, unused name beside ``path`` (same folder: same filesystem, so rename is atomic)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")


def publish(tmp: Path | str, path: Path | str, folder: bool = False) -> None:
    """Give a finished temporary file (or folder) the usual permissions and rename it into place."""
    os.chmod(tmp, new_file_mode(folder))
    os.replace(tmp, path)


def discard(tmp: Path | str) -> None:
    """Remove a temporary file if it is there; a read-only folder never had one, so ignore errors."""
    try:
        os.unlink(tmp)
    except OSError:
        pass


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; publish it on success, remove it on any error."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        publish(tmp, path)
    except BaseException:
        discard(tmp)
        raise
