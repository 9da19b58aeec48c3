"""Publishing a file that no reader ever sees half-written: the one atomic write of scriptrl.

Used for ``best_policy.py``, exported policies and reports: each is a file people open while a
run may still be writing it, or after it was killed mid-write.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from scriptrl.errors import UserError


def write_atomic(target: str | Path, text: str) -> Path:
    """Replace ``target`` with ``text`` in one step: the old content or the new, never a mix.

    The temp file lives in the target's folder so ``os.replace`` is a same-filesystem rename;
    the fsyncs make the new content, and then the rename, reach the disk in that order.
    Raises ``OSError``; the temp file never outlives a failure.
    """
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; these files are meant to be read and shared
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(target.parent)
    return target


def write_output(out: Path, text: str) -> Path:
    """Publish a file the user named with ``-o`` (an exported policy, a report): its folder is made,
    the write is atomic, and a failure is the one-line ``UserError`` that says what to do."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(out, text)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror} (choose another -o path)") from None


def _fsync_dir(path: Path) -> None:
    """Persist a rename; not every platform or filesystem can open a directory, and that is fine."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
