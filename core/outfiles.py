"""Writing the files a command produces (reports, exports, letters, payment files) so
that no one else can read them and no planted symbolic link redirects them.

Everything is first written into a fresh private folder (mode 0700, files 0600) and then
moved into place, one rename per entry: a reader never sees half a file, a failure leaves
nothing behind, and a destination that is a symbolic link is refused, never followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import Conflict, Refused

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def refuse_symlink(path: Path, *, field: str = "--out") -> None:
    """Refuse ``path`` when it is a symbolic link (dangling or not)."""
    info = _lstat(path)
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise Refused(f"{field}: {path} is a symbolic link; avain does not write through links, "
                      "give a real path", field=field)


def folder(out: Path, *, field: str = "--out") -> Path:
    """``out`` as a real folder: made (mode 0700) when missing; refused when it, or a folder
    it is made in, is a symbolic link, or when it is not a folder."""
    out = Path(out)
    refuse_symlink(out, field=field)
    info = _lstat(out)
    if info is None:
        missing = []
        parent = out
        while _lstat(parent) is None and parent != parent.parent:
            missing.append(parent)
            parent = parent.parent
        for made in reversed(missing):
            try:
                made.mkdir(mode=FOLDER_MODE)
            except OSError as exc:
                raise Refused(f"{field}: cannot make the folder {made}: {exc.strerror}", field=field) from exc
    elif not stat.S_ISDIR(info.st_mode):
        raise Refused(f"{field}: {out} is not a folder", field=field)
    return out


def _private(tree: Path) -> None:
    for root, dirs, files in os.walk(tree):
        for d in dirs:
            os.chmod(os.path.join(root, d), FOLDER_MODE)
        for f in files:
            os.chmod(os.path.join(root, f), FILE_MODE)


@contextlib.contextmanager
def staged(out: Path, *, field: str = "--out") -> Iterator[Path]:
    """Yield a fresh private folder; when the block ends without an error, every entry
    written there replaces the entry of the same name in ``out`` (a folder as a whole).
    An entry of ``out`` that is a symbolic link is refused before anything is moved."""
    out = folder(out, field=field)
    work = Path(tempfile.mkdtemp(prefix=".avain-", dir=out))  # mode 0700
    try:
        yield work
        _private(work)
        names = sorted(n for n in os.listdir(work) if not n.startswith(".avain-old-"))
        for name in names:
            target = out / name
            refuse_symlink(target, field=field)
            info = _lstat(target)
            if info is not None and stat.S_ISDIR(info.st_mode) != (work / name).is_dir():
                # reported like any file that cannot be written: naming the path in the way
                if stat.S_ISDIR(info.st_mode):
                    raise IsADirectoryError(errno.EISDIR, "a folder is where avain writes a file", str(target))
                raise NotADirectoryError(errno.ENOTDIR, "a file is where avain writes a folder", str(target))
        for name in names:
            target = out / name
            if (work / name).is_dir() and _lstat(target) is not None:
                os.rename(target, work / f".avain-old-{name}")  # the old folder goes with the work folder
            os.replace(work / name, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def new_folder(out: Path, *, field: str = "--out") -> contextlib.AbstractContextManager[Path]:
    """Like :func:`staged`, for a folder that must be new or empty: yields a private
    folder beside ``out`` that is renamed to ``out`` at the end."""
    return _new_folder(Path(out), field)


@contextlib.contextmanager
def _new_folder(out: Path, field: str) -> Iterator[Path]:
    refuse_symlink(out, field=field)
    info = _lstat(out)
    if info is not None and (not stat.S_ISDIR(info.st_mode) or any(out.iterdir())):
        raise Conflict(f"{field}: {out} is not an empty folder; export into a new one", field=field)
    parent = folder(out.parent, field=field) if out.parent != out else out.parent
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        yield work
        _private(work)
        refuse_symlink(out, field=field)
        if _lstat(out) is not None:
            out.rmdir()
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def write_file(path: Path, data: bytes, *, field: str = "--out") -> Path:
    """Write ``data`` to the file ``path`` (mode 0600) by a rename: never through a
    symbolic link at ``path``, never half-written."""
    path = Path(path)
    refuse_symlink(path, field=field)
    info = _lstat(path)
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise Refused(f"{field}: {path} is a folder; give a file name", field=field)
    parent = folder(path.parent, field=field) if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
