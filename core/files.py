"""Files a run writes: atomically (a temporary file renamed into place, so an interrupted
write never leaves a half-written file under the real name), and a lock that keeps two
runs out of one folder.

A run folder keeps a manifest, `.run-files`: every file written into it through
`atomic_write` is listed there, once, as it is written (kill -9 included), so a run knows
exactly which files are its own, and `--overwrite` replaces those and nothing else.

A folder may have been edited by anyone who can write to it, so nothing here follows a
symbolic link out of it, nor writes into a file with another name (a hard link to a
user's file): the lock and every temporary are opened with O_NOFOLLOW and refused with
more than one link (temporaries are created with O_EXCL; the manifest is rewritten
through one), and a name read from a manifest counts only when it resolves to a plain
file inside the folder (`inside`).
"""

from __future__ import annotations

import errno
import os
import secrets
import socket
from collections.abc import Callable, Iterable
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


def inside(folder: Path, name: str) -> Path | None:
    """`folder/name` when it is a plain file (not a link) that resolves inside `folder`;
    None for anything else, such as `../x` or a link out of the folder, read from a
    manifest someone edited."""
    path = Path(folder) / name
    try:
        if path.is_symlink() or not path.is_file():
            return None
        if not path.resolve().is_relative_to(Path(folder).resolve()):
            return None
    except (OSError, ValueError):
        return None
    return path


def _open_nofollow(path: Path, flags: int) -> int:
    """os.open that refuses a symbolic link at `path` with one line, not a write through
    it into a file outside the folder, and so a hard link: a file with a second name
    (`ln ~/notes.txt run/.lock`) may be someone's, and the run writes only its own."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW, 0o666)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UserError(f"{path} is a symbolic link, where the run writes a file of its "
                            "own; remove the link") from None
        raise
    if os.fstat(fd).st_nlink > 1:
        os.close(fd)
        raise UserError(f"{path} is a hard link (the file has another name too), where the "
                        "run writes a file of its own; remove it")
    return fd


def _list_in_manifest(path: Path) -> None:
    """Add `path` to the manifest of the run folder it is in, once: the manifest is
    rewritten whole under a fresh name and renamed into place, like every file the run
    writes, so a manifest that is a hard link (a killed --overwrite leaves its links) is
    never written through, and a name already listed (run.json, rewritten by every
    --eval-only) is not listed again."""
    target = path.resolve()
    for folder, listed in _listed.items():
        if not target.is_relative_to(folder):
            continue
        name = str(target.relative_to(folder))
        listed.add(name)
        manifest = folder / MANIFEST
        if manifest.is_symlink():
            raise UserError(f"{manifest} is a symbolic link, where the run writes a file of "
                            "its own; remove the link")
        try:
            names = manifest.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            names = []
        if name in names:
            continue
        text = "".join(f"{n}\n" for n in [*names, name])
        _replace(manifest, lambda tmp, text=text: Path(tmp).write_text(text, encoding="utf-8"))


def _check_no_link_out(path: Path) -> None:
    """A file meant for a run folder this process keeps must land in it: a folder inside
    it (seed0/) that is a link elsewhere is refused rather than written through."""
    absolute = Path(os.path.abspath(path))
    for folder in _listed:
        if absolute.is_relative_to(folder) and not absolute.parent.resolve().is_relative_to(
                folder):
            raise UserError(f"cannot write {path}: {absolute.parent} is a link out of the "
                            f"run folder {folder}; remove the link")


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call `write(temporary_path)`, then rename the file to `path`, and list it in its
    run folder's manifest. The temporary file is created with mode 0o666, so the kernel
    applies the user's umask as for any new file. A failed write (a full disk: OSError
    ENOSPC) leaves nothing behind and is raised."""
    path = Path(path)
    _replace(path, write)
    _list_in_manifest(path)


def _replace(path: Path, write: Callable[[str], None]) -> None:
    """atomic_write without the manifest (the manifest itself is written so)."""
    _check_no_link_out(path)
    # a fresh name, created here and nowhere else: O_EXCL fails on anything planted there
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TMP_SUFFIX}")
    try:
        os.close(_open_nofollow(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except IsADirectoryError:
        raise UserError(f"cannot write {path}: it is a folder") from None
    except (PermissionError, FileNotFoundError, NotADirectoryError, FileExistsError) as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None
    except OSError as error:
        if error.errno != errno.EROFS:
            raise
        raise UserError(f"cannot write {path}: {error.strerror}") from None
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except IsADirectoryError:
        raise UserError(f"cannot write {path}: it is a folder") from None
    except PermissionError as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None
    except RuntimeError as error:
        # torch.save's zip writer reports a failed write (a full disk) as a RuntimeError
        # from its C++ side ("unexpected pos"), which says nothing to a user
        if "unexpected pos" not in str(error) and "file write failed" not in str(error):
            raise
        raise OSError(errno.ENOSPC, "no space left on the device", str(path)) from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str | Iterable[str]) -> None:
    """Write `text` to `path` atomically; or its parts one after the other, each written
    as it comes (a long file's text never whole in memory)."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for part in [text] if isinstance(text, str) else text:
                f.write(part)
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
        key = self.folder.resolve() / ".lock"  # the folder resolved, never the lock itself
        if key in _held:
            return True
        try:
            fd = _open_nofollow(key, os.O_RDWR | os.O_CREAT)
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
        fd = _held.pop(self.folder.resolve() / ".lock", None)
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the lock
