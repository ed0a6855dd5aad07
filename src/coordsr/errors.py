"""Errors a user can cause. The CLI turns each into one line on stderr and a non-zero exit."""


class CoordsrError(Exception):
    """Bad input or a request that cannot be met: shown to the user as one line."""

    exit_code = 2


class ImageError(CoordsrError):
    """An image that cannot be read or written (missing, not an image, truncated, too small)."""


class FieldFileError(CoordsrError):
    """A field or weights file that is corrupt, of another format version, or mismatched."""


class SettingError(CoordsrError, ValueError):
    """An unknown method, a method of another task, a setting the method does not have, or a
    value out of its range (also a ``ValueError``, as Python callers expect of a bad argument)."""


class Cancelled(Exception):
    """Raised by a progress callback to stop a fit early (the web page's cancel button)."""


class StopEarly(Exception):
    """Raised by a progress callback to end a fit now and keep the field as it is (the web page's
    "stop and keep" button); ``FieldUpscaler.fit_field`` returns that field."""

    def __init__(self, step: int, psnr: float | None):
        super().__init__(f"stopped at step {step}")
        self.step, self.psnr = step, psnr
