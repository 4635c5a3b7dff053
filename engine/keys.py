"""Secret files (draw keys, API keys, the audit signing key): created private from the first byte.

A file created world-readable and chmod-ed afterwards is readable by anyone who opens it in
between; a symlink planted where the key is to go would send the key elsewhere. So a new file is
opened with O_CREAT | O_EXCL | O_NOFOLLOW and mode 0600, and a file that is rewritten (the API keys
file) is written to a new private file beside it and renamed over it.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import InputError


def create_private(path: str | Path, text: str) -> None:
    """Write a new file readable by its owner only; refuse to overwrite anything, or follow a link."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise InputError(f"{path}: exists already; refusing to overwrite a key file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot create: {err.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def replace_private(path: str | Path, text: str) -> None:
    """Rewrite a private file whole: a new 0600 file beside it, renamed over the old one."""
    path = Path(path)
    if path.is_symlink():
        raise InputError(f"{path}: is a symbolic link; refusing to write a key file through it")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    create_private(temporary, text)
    os.replace(temporary, path)
