"""Writing a file so that a reader finds the old content or the new, never a mix, even after a
crash or a power cut: write a temporary file beside it, fsync it, rename it over the target and
fsync the directory (the rename itself is durable only then)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    """Replace path with data (str is written as UTF-8), atomically and durably.

    The file gets exactly `mode` (the umask does not apply); the temporary file is created
    owner-only, so a private file is never readable by others, not even for a moment. Raises
    OSError, which callers turn into their own one-line error; the temporary file is removed.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        # some file systems cannot sync a directory; the rename is still atomic there
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)
