"""SIGINT and SIGTERM as an exception, so a stopped run unwinds like a failed one.

Inside ``stop_on_signals()`` either signal raises ``Interrupted`` in the main thread. It is a
``KeyboardInterrupt``, so every ``finally`` and ``except KeyboardInterrupt`` on the way out runs:
atomic writes remove their temporary file, training writes its checkpoint. The CLI turns it
into one line and the shell's status for the signal (128 + number: 130 for SIGINT, 143 for
SIGTERM). Python's default SIGTERM would end the process at once, skipping all of that.

A second signal while the first one unwinds is recorded but raises nothing: the cleanup it
would interrupt is short (removing a temporary file, writing one checkpoint), and an exception
inside it is what leaves files behind. SIGKILL still ends everything.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A signal asked the process to stop; ``exit_code`` is the shell's status for it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def describe(self) -> str:
        """'interrupted' (Ctrl-C) or 'terminated (SIGTERM)'."""
        return "interrupted" if self.signum == signal.SIGINT else f"terminated ({signal.Signals(self.signum).name})"


@contextmanager
def stop_on_signals() -> Iterator[list[Interrupted]]:
    """Raise ``Interrupted`` on SIGINT/SIGTERM while inside; yields the list of what was raised.

    Outside the main thread (signal handlers cannot be installed there) it does nothing. The
    previous handlers are restored on exit, so nesting and in-process callers (tests) are safe.
    """
    raised: list[Interrupted] = []
    if threading.current_thread() is not threading.main_thread():
        yield raised
        return

    def handler(signum, frame):
        if raised:  # already unwinding: let the cleanup finish
            return
        raised.append(Interrupted(signum))
        raise raised[0]

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield raised
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def exit_code_of(exc: BaseException) -> int:
    """The exit status of an interruption: 128 + signal for ``Interrupted``, 130 for Ctrl-C."""
    return exc.exit_code if isinstance(exc, Interrupted) else 128 + signal.SIGINT
