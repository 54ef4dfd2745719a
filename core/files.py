"""Files a run writes: atomically (a temporary file renamed into place, so an interrupted
write never leaves a half-written file under the real name), with the user's umask, and
a lock that keeps two runs out of one folder."""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from core.config import UserError

TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call `write(temporary_path)`, then rename the file to `path`. The file gets the
    permissions of any other new file (mkstemp alone would make it private)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=TMP_SUFFIX)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
        os.replace(tmp, path)
    except RuntimeError as error:
        # torch.save reports a full disk as "[enforce fail at inline_container.cc...]"
        if "enforce fail" in str(error) or "file write failed" in str(error):
            raise OSError(errno.ENOSPC, "no space left on device", str(path)) from None
        raise
    except PermissionError as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    atomic_write(path, write)


def remove_stale_temporaries(folder: Path) -> None:
    """Delete the temporary files that a killed run (kill -9, power cut) left behind.
    Only call it while holding the folder's lock: then no write is in flight."""
    for tmp in Path(folder).rglob(f"*{TMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


class FolderLock:
    """`folder/.lock`, holding the owner's host and pid, created exclusively: a second run
    into the same folder is refused instead of mixing its checkpoints with the first's. A
    lock whose process has died on this host is stale and taken over, and so is one this
    very process took for an earlier run that has ended (tests call a task's main twice)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / ".lock"
        self.held = False

    def acquire(self) -> None:
        me = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                if not self._stale():
                    owner = self.path.read_text().strip() or "another process"
                    raise UserError(f"{self.path.parent} is in use by another run (host and "
                                    f"pid {owner}); wait for it, or choose another "
                                    "--run-dir") from None
                self.path.unlink(missing_ok=True)
                continue
            except OSError as error:
                raise UserError(f"cannot write in {self.path.parent}: {error.strerror}; "
                                "choose another --run-dir") from None
            with os.fdopen(fd, "w") as f:
                f.write(me + "\n")
            self.held = True
            return
        raise UserError(f"cannot take the lock {self.path}; remove it if no run is using "
                        f"{self.path.parent}")

    def _stale(self) -> bool:
        try:
            host, pid = self.path.read_text().split()
            return host == socket.gethostname() and (int(pid) == os.getpid()
                                                     or not _alive(int(pid)))
        except (OSError, ValueError):
            return False  # being written this instant, or foreign: not ours to remove

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
