"""The integrity key: kept outside the database, owner-only, one subkey per purpose."""

from __future__ import annotations

import pytest

from avain.core import integrity_key, message_keys
from avain.core.errors import ConfigError


@pytest.fixture
def no_env_key(monkeypatch):
    monkeypatch.delenv("AVAIN_INTEGRITY_KEY")
    monkeypatch.delenv("AVAIN_MESSAGE_KEY")


def test_a_key_file_is_made_beside_a_sqlite_database_readable_by_its_owner_only(tmp_path, no_env_key):
    url = f"sqlite:///{tmp_path / 'avain.db'}"
    key, created = integrity_key.ensure(url)
    path = tmp_path / "avain.db.integrity-key"
    assert created and key.path == path
    assert path.stat().st_mode & 0o777 == 0o600
    again, created_again = integrity_key.ensure(url)
    assert not created_again and again.secret == key.secret  # never replaced


def test_a_key_file_others_may_read_is_refused(tmp_path, no_env_key):
    url = f"sqlite:///{tmp_path / 'avain.db'}"
    integrity_key.ensure(url)
    (tmp_path / "avain.db.integrity-key").chmod(0o644)
    with pytest.raises(ConfigError, match=r"avain.db.integrity-key: the integrity key file may be read by others "
                                          r"\(mode 0644\).*chmod 600"):
        integrity_key.load(url)


def test_a_message_key_file_others_may_read_is_refused(tmp_path, no_env_key):
    url = f"sqlite:///{tmp_path / 'avain.db'}"
    message_keys.ensure(url)
    (tmp_path / "avain.db.key").chmod(0o640)
    with pytest.raises(ConfigError, match="message key file may be read by others"):
        message_keys.load(url)


def test_each_purpose_has_its_own_subkey():
    key = integrity_key.generate()
    assert key.mac("audit", "x") != key.mac("ledger", "x")
    assert key.check("audit", "x", key.mac("audit", "x"))
    assert not integrity_key.generate().check("audit", "x", key.mac("audit", "x"))


def test_a_server_database_without_a_key_says_where_to_put_one(monkeypatch):
    monkeypatch.delenv("AVAIN_INTEGRITY_KEY")
    with pytest.raises(integrity_key.IntegrityKeyError, match="AVAIN_INTEGRITY_KEY_FILE"):
        integrity_key.require("postgresql+psycopg://u@h/db")


def test_a_malformed_key_names_where_it_came_from(monkeypatch):
    monkeypatch.setenv("AVAIN_INTEGRITY_KEY", "short")
    with pytest.raises(ConfigError, match="AVAIN_INTEGRITY_KEY: not an integrity key"):
        integrity_key.load("sqlite:///x.db")
