"""The keys that encrypt the client–worker dialogue, kept outside the database.

Message bodies and attachments are sealed with AES-256-GCM (``cryptography``'s
authenticated encryption): a database dump alone reveals no message text, and a changed
byte, a ciphertext moved to another message, or the wrong key is detected, never read as
garbage.

Where the keys are, first found wins:

1. ``AVAIN_MESSAGE_KEY``: one or more keys, comma-separated, the newest first;
2. the file ``AVAIN_MESSAGE_KEY_FILE`` names;
3. a file beside the SQLite database (``avain.db`` → ``avain.db.key``). A server
   database (PostgreSQL) has no "beside": it needs one of the two variables, so that
   the key never depends on the folder a command happens to run in.

A key is 32 random bytes written as URL-safe base64. The first key encrypts; every key
decrypts the messages sealed with it (each message records the id of its key), so a
rotation can be finished after an interruption. A key file holds one key per line, is
created with mode 0600, and is replaced atomically.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path

from attrs import field, frozen
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import db as dbmod
from .errors import AvainError, ConfigError

KEY_ENV = "AVAIN_MESSAGE_KEY"
KEY_FILE_ENV = "AVAIN_MESSAGE_KEY_FILE"
KEY_BYTES = 32
NONCE_BYTES = 12


class MessageKeyError(AvainError):
    """A message cannot be sealed or opened: no key, the wrong key, or a ciphertext that
    was changed. Nothing is written when this is raised."""

    error_code = "message_key"


@frozen
class MessageKey:
    """One key and its id (the first 12 hex digits of its SHA-256; the id reveals nothing
    of the key)."""

    id: str
    secret: bytes = field(repr=False)

    @classmethod
    def parse(cls, text: str, *, where: str) -> MessageKey:
        text = text.strip()
        try:
            secret = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            secret = b""
        if len(secret) != KEY_BYTES:
            raise ConfigError(f"{where}: not a message key (expected {KEY_BYTES} bytes in URL-safe base64, "
                              "as `avain message rotate-key` writes)")
        return cls(key_id(secret), secret)

    @classmethod
    def generate(cls) -> MessageKey:
        secret = secrets.token_bytes(KEY_BYTES)
        return cls(key_id(secret), secret)

    def text(self) -> str:
        return base64.urlsafe_b64encode(self.secret).decode("ascii").rstrip("=")


def key_id(secret: bytes) -> str:
    return hashlib.sha256(b"avain-message-key\0" + secret).hexdigest()[:12]


@frozen
class Keyring:
    """The keys in use, the newest first, and where they came from (``env`` or a path)."""

    keys: tuple[MessageKey, ...]
    source: str
    path: Path | None = None

    @property
    def current(self) -> MessageKey:
        return self.keys[0]

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        """Encrypt with the current key: (key id, nonce + ciphertext + tag)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return self.current.id, nonce + AESGCM(self.current.secret).encrypt(nonce, plaintext, aad)

    def open(self, key_id_: str, blob: bytes, aad: bytes, *, what: str) -> bytes:
        """Decrypt ``blob`` sealed with key ``key_id_``; ``what`` names it in errors."""
        for key in self.keys:
            if key.id == key_id_:
                try:
                    return AESGCM(key.secret).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
                except (InvalidTag, ValueError) as exc:
                    raise MessageKeyError(f"{what} cannot be decrypted: its ciphertext was changed "
                                          "(authentication failed); nothing was shown") from exc
        raise MessageKeyError(f"{what} was encrypted with message key {key_id_}, which is not among the keys "
                              f"in {self.describe()} ({', '.join(k.id for k in self.keys)}): wrong key")

    def describe(self) -> str:
        return KEY_ENV if self.source == "env" else f"the key file {self.path}"


def default_key_path(url: str) -> Path | None:
    """Where the key file of the database ``url`` lives: ``AVAIN_MESSAGE_KEY_FILE``, else
    beside a SQLite file; None for a server database without the variable."""
    named = os.environ.get(KEY_FILE_ENV)
    if named:
        return Path(named)
    path = dbmod.sqlite_path(url)
    if path is not None:
        return path.with_name(path.name + ".key")
    return None


NO_PLACE = (f"a server database keeps its message key where you say: set {KEY_ENV} (the key) or "
            f"{KEY_FILE_ENV} (a file for it)")


def where(url: str) -> str:
    """Where a key would be looked for, for messages."""
    path = default_key_path(url)
    return f"{KEY_ENV} is not set and there is no key file at {path}" if path is not None else NO_PLACE


def load(url: str) -> Keyring | None:
    """The keyring for the database ``url``, or None when there is no key yet."""
    env = os.environ.get(KEY_ENV)
    if env is not None and env.strip():
        parts = [p for p in env.split(",") if p.strip()]
        keys = tuple(MessageKey.parse(p, where=f"{KEY_ENV} (key {i})") for i, p in enumerate(parts, 1))
        return Keyring(keys, "env")
    path = default_key_path(url)
    from .integrity_key import private_key_file

    stat = private_key_file(path, "message key file") if path is not None else None
    if stat is None:
        return None
    return _read_file(str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _read_file(name: str, inode: int, mtime_ns: int, size: int) -> Keyring:
    """The key file ``name`` as it is (inode, time, size): read and parsed once, not for
    every message. Every write replaces the file (a new inode), so a rotated file is read
    again."""
    path = Path(name)
    try:
        lines = [(n, line) for n, line in enumerate(path.read_text("ascii").splitlines(), 1)
                 if line.strip() and not line.lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the message key file: {exc}") from exc
    if not lines:
        raise ConfigError(f"{path}: the message key file holds no key")
    return Keyring(tuple(MessageKey.parse(line, where=f"{path}, line {n}") for n, line in lines), "file", path)


def write_file(path: Path, keys: tuple[MessageKey, ...], *, exclusive: bool = False) -> None:
    """Write ``keys`` (newest first) to ``path`` atomically, readable by the owner only.
    ``exclusive``: only if no file is there (two processes creating a key at once keep
    the first one's; the other raises FileExistsError)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = ("# avain message keys: the first encrypts, every one decrypts. Keep this file secret\n"
            "# and back it up apart from the database: without it the messages cannot be read.\n"
            + "".join(k.text() + "\n" for k in keys))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def ensure(url: str) -> tuple[Keyring, bool]:
    """The keyring of ``url``, creating a key file when there is no key (``init``, ``demo``,
    the first message of a new database). Returns (keyring, created)."""
    ring = load(url)
    if ring is not None:
        return ring, False
    path = default_key_path(url)
    if path is None:
        raise MessageKeyError(f"no message key: {NO_PLACE}")
    key = MessageKey.generate()
    try:
        write_file(path, (key,), exclusive=True)
    except FileExistsError:
        return load(url), False
    return Keyring((key,), "file", path), True
