"""Files a run writes: atomically (a temporary file renamed into place, so an interrupted
write never leaves a half-written file under the real name), and a lock that keeps two
runs out of one folder.

A run folder keeps a manifest, `.run-files`: every file written into it through
`atomic_write` is listed there as it is written (kill -9 included), so a run knows exactly
which files are its own, and `--overwrite` replaces those and nothing else.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from core.config import UserError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks of this kind
    fcntl = None

TMP_SUFFIX = ".tmp"
MANIFEST = ".run-files"
_listed: dict[Path, set[str]] = {}  # run folder -> the files this process listed in it


def keep_manifest(folder: Path) -> None:
    """From now on, list every file written under `folder` in its manifest (a run starts
    it; so does one that has just set the earlier run's files aside)."""
    _listed[Path(folder).resolve()] = set()


def listed_by_this_process(folder: Path) -> set[str]:
    """The paths (relative to `folder`) this process has written there."""
    return set(_listed.get(Path(folder).resolve(), ()))


def _list_in_manifest(path: Path) -> None:
    target = path.resolve()
    for folder, listed in _listed.items():
        if target.is_relative_to(folder):
            name = str(target.relative_to(folder))
            if name not in listed:
                listed.add(name)
                with open(folder / MANIFEST, "a", encoding="utf-8") as f:
                    f.write(name + "\n")


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call `write(temporary_path)`, then rename the file to `path`. The temporary file is
    created with mode 0o666, so the kernel applies the user's umask as for any new file. A
    failed write (a full disk: OSError ENOSPC) leaves nothing behind and is raised."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        os.close(os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o666))
    except IsADirectoryError:
        raise UserError(f"cannot write {path}: it is a folder") from None
    except (PermissionError, FileNotFoundError, NotADirectoryError) as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except IsADirectoryError:
        raise UserError(f"cannot write {path}: it is a folder") from None
    except PermissionError as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    _list_in_manifest(path)


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


_held: dict[Path, int] = {}  # lock file -> open descriptor, for the locks this process holds


class FolderLock:
    """An advisory OS lock (flock) on `folder/.lock`, held while the run lives: a second
    run into the same folder is refused instead of mixing its checkpoints with the
    first's. The kernel releases the lock when the process ends, however it ends (kill -9
    included), so a lock is never stale and a leftover .lock file means nothing. A folder
    this process already holds (a task's main called twice, as tests do) is held again."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / ".lock"

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False if another process holds it."""
        if fcntl is None:
            raise UserError("run folders are locked with fcntl.flock, which this platform "
                            "lacks; run under Linux, macOS or WSL")
        key = self.path.resolve()
        if key in _held:
            return True
        try:
            fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666)
        except IsADirectoryError:
            raise UserError(f"{self.path} is a folder, where the run's lock file belongs; "
                            "remove it") from None
        except OSError as error:
            raise UserError(f"cannot write in {self.folder}: {error.strerror}; choose "
                            "another --run-dir") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        try:  # who holds it, for the message a second run shows; a full disk is no matter
            os.ftruncate(fd, 0)
            os.write(fd, f"host {socket.gethostname()} pid {os.getpid()}\n".encode())
        except OSError:
            pass
        _held[key] = fd
        return True

    def acquire(self) -> None:
        """Take the lock, or raise a UserError naming the run that holds it."""
        if not self.try_acquire():
            try:
                owner = self.path.read_text().strip() or "another process"
            except OSError:
                owner = "another process"
            raise UserError(f"{self.folder} is in use by another run ({owner}); wait for it "
                            "to end (its lock frees itself when it does), or choose another "
                            "--run-dir")

    def release(self) -> None:
        fd = _held.pop(self.path.resolve(), None)
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the lock
