"""Atomic file writes (temp file + fsync + os.replace) and file hashing."""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import PscError


def ensure_dir(path: str | Path, what: str = "output folder") -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PscError(f"cannot create {what} ({e.strerror}), {path}, choose a writable path")
    if not os.access(path, os.W_OK):
        raise PscError(f"{what} is not writable, {path}, choose a writable path")
    return path


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


_UMASK = _umask()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temps(path: Path) -> None:
    """Delete temp files of ``path`` left by writers that were killed (SIGKILL runs no
    cleanup): their names carry the writer's pid, and only dead writers' files go."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            try:
                tmp.unlink()
            except OSError:
                pass


def atomic_write(path: str | Path, write: Callable[[Any], None], binary: bool = True) -> Path:
    """Write through ``write(fileobj)`` to a temp file in the same folder, fsync, rename."""
    path = Path(path)
    ensure_dir(path.parent)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                               suffix=".tmp")
    try:
        # mkstemp creates 0600; a result or checkpoint gets the mode any new file gets
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if _out_of_space(e, path.parent):
            raise PscError(f"no space left on the device, in {path.parent}, free space there "
                           "(or point --out / --cache-dir elsewhere) and rerun; finished work "
                           "is kept") from None
        raise
    return path


def _out_of_space(e: BaseException, folder: Path) -> bool:
    """A full disk, as OSError (ENOSPC / EDQUOT) or as the RuntimeError torch.save turns
    a failed buffered write into (then judged by the folder's free space)."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(e, RuntimeError):
        try:
            return shutil.disk_usage(folder).free < (1 << 20)
        except OSError:
            return False
    return False


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    def write(f):
        json.dump(obj, f, indent=2, sort_keys=False, allow_nan=True)
        f.write("\n")

    return atomic_write(path, write, binary=False)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
