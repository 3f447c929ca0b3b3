"""The integrity key: the secret behind every keyed hash, kept outside the database.

An insider who can write to the database can recompute a plain SHA-256 chain after
changing a row. A keyed hash (HMAC-SHA256) can only be recomputed with this key, which
lives where the database does not: in ``AVAIN_INTEGRITY_KEY``, in the file
``AVAIN_INTEGRITY_KEY_FILE`` names, or beside a SQLite database (``avain.db`` →
``avain.db.integrity-key``). A server database (PostgreSQL) needs one of the two variables.

Unlike the message keys, this key is not rotated: what it has signed must stay verifiable.
Each use derives a subkey of its own (``purpose``), so a hash made for one purpose (the
audit chain, the ledger chain, a henkilötunnus index, a checkpoint) is never valid for
another. The file is written with mode 0600, and a key file that others may read is
refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
from functools import lru_cache
from pathlib import Path

from attrs import field, frozen

from . import db as dbmod
from .errors import AvainError, ConfigError

KEY_ENV = "AVAIN_INTEGRITY_KEY"
KEY_FILE_ENV = "AVAIN_INTEGRITY_KEY_FILE"
KEY_BYTES = 32
SUFFIX = ".integrity-key"


class IntegrityKeyError(AvainError):
    """There is no integrity key where one is needed. Nothing is written when this is raised."""

    error_code = "integrity_key"


def refuse_if_shared(path: Path, what: str) -> None:
    """Raise ConfigError when ``path`` may be read or written by anyone but its owner."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if stat.S_IMODE(mode) & 0o077:
        raise ConfigError(f"{path}: the {what} may be read by others (mode {stat.S_IMODE(mode):04o}); "
                          f"make it readable by its owner only: chmod 600 {path}")


@frozen
class IntegrityKey:
    """The secret and its id (the first 12 hex digits of a hash of it; reveals nothing)."""

    secret: bytes = field(repr=False)
    source: str = "env"
    path: Path | None = None

    @property
    def id(self) -> str:
        return hashlib.sha256(b"avain-integrity-key\0" + self.secret).hexdigest()[:12]

    def subkey(self, purpose: str) -> bytes:
        return _subkey(self.secret, purpose)

    def mac(self, purpose: str, data: bytes | str) -> str:
        """HMAC-SHA256 of ``data`` under the subkey of ``purpose``, as 64 hex digits."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        return hmac.digest(_subkey(self.secret, purpose), data, "sha256").hex()

    def check(self, purpose: str, data: bytes | str, mac: str) -> bool:
        return hmac.compare_digest(self.mac(purpose, data), mac or "")

    def text(self) -> str:
        return base64.urlsafe_b64encode(self.secret).decode("ascii").rstrip("=")

    def describe(self) -> str:
        return KEY_ENV if self.source == "env" else f"the key file {self.path}"


@lru_cache(maxsize=64)
def _subkey(secret: bytes, purpose: str) -> bytes:
    """Derived once per key and purpose: the ledger signs every transfer with one."""
    return hmac.new(secret, b"avain-subkey\0" + purpose.encode(), hashlib.sha256).digest()


def parse(text: str, *, where: str) -> bytes:
    text = text.strip()
    try:
        secret = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        secret = b""
    if len(secret) != KEY_BYTES:
        raise ConfigError(f"{where}: not an integrity key (expected {KEY_BYTES} bytes in URL-safe base64)")
    return secret


def generate() -> IntegrityKey:
    return IntegrityKey(secrets.token_bytes(KEY_BYTES))


def default_key_path(url: str) -> Path | None:
    named = os.environ.get(KEY_FILE_ENV)
    if named:
        return Path(named)
    path = dbmod.sqlite_path(url)
    if path is not None:
        return path.with_name(path.name + SUFFIX)
    return None


def where(url: str) -> str:
    path = default_key_path(url)
    if path is not None:
        return f"{KEY_ENV} is not set and there is no key file at {path}"
    return (f"a server database keeps its integrity key where you say: set {KEY_ENV} (the key) or "
            f"{KEY_FILE_ENV} (a file for it)")


def load(url: str) -> IntegrityKey | None:
    """The integrity key of the database ``url``, or None when there is none yet."""
    env = os.environ.get(KEY_ENV)
    if env is not None and env.strip():
        return IntegrityKey(parse(env, where=KEY_ENV), "env")
    path = default_key_path(url)
    st = private_key_file(path, "integrity key file") if path is not None else None
    if st is None:
        return None
    return _read_file(str(path), st.st_ino, st.st_mtime_ns, st.st_size)


def private_key_file(path: Path, what: str) -> os.stat_result | None:
    """The stat of the key file ``path`` (None when there is none), refused when others may
    read or write it. Its inode, time and size key the cache of the parsed file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    refuse_if_shared(path, what)
    return st


@lru_cache(maxsize=16)
def _read_file(name: str, inode: int, mtime_ns: int, size: int) -> IntegrityKey:
    path = Path(name)
    try:
        lines = [(n, line) for n, line in enumerate(path.read_text("ascii").splitlines(), 1)
                 if line.strip() and not line.lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the integrity key file: {exc}") from exc
    if len(lines) != 1:
        raise ConfigError(f"{path}: the integrity key file must hold exactly one key (found {len(lines)})")
    n, line = lines[0]
    return IntegrityKey(parse(line, where=f"{path}, line {n}"), "file", path)


def require(url: str) -> IntegrityKey:
    """The integrity key, or IntegrityKeyError saying where it was looked for."""
    key = load(url)
    if key is None:
        raise IntegrityKeyError(f"no integrity key: {where(url)}; avain init or avain demo creates one "
                                "for a new database")
    return key


def write_file(path: Path, key: IntegrityKey) -> None:
    """Write ``key`` to ``path`` readable by its owner only; never replaces a file that is
    there (FileExistsError), since what the old key signed could no longer be verified."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = ("# avain integrity key: it signs the audit and ledger chains and their checkpoints.\n"
            "# Keep it secret, never change it, and back it up apart from the database.\n"
            + key.text() + "\n")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def ensure_for(engine) -> tuple[IntegrityKey, bool]:
    """:func:`ensure` for ``avain init``, which also meets databases that already hold data:
    one whose audit trail was signed with a key that is not here gets no new key (everything
    it signed would read as altered, and no henkilötunnus would be found again)."""
    url = engine.url.render_as_string(hide_password=False)
    key = load(url)
    if key is not None:
        return key, False
    signed = _signed_events(engine)
    if signed:
        raise IntegrityKeyError(
            f"no integrity key: {where(url)}, but this database's audit trail ({signed} events) was signed "
            f"with one: restore that key ({KEY_ENV}, {KEY_FILE_ENV} or the key file from the backup); "
            "a new key would make every event read as altered")
    return ensure(url)


def _signed_events(engine) -> int:
    """How many audit events a keyed schema (revision 0013 on) holds; 0 for an older one,
    whose upgrade signs them with a new key."""
    from sqlalchemy import text

    from . import db as dbmod

    revision = dbmod.current_revision(engine)
    if revision is None or revision < "0013":
        return 0
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one()


def ensure(url: str) -> tuple[IntegrityKey, bool]:
    """The key of ``url``, creating a key file when there is none (``init``, ``demo``).
    Returns (key, created)."""
    key = load(url)
    if key is not None:
        return key, False
    path = default_key_path(url)
    if path is None:
        raise IntegrityKeyError(f"no integrity key: {where(url)}")
    new = generate()
    try:
        write_file(path, new)
    except FileExistsError:
        return require(url), False
    return IntegrityKey(new.secret, "file", path), True
