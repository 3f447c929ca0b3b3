"""The integrity key at the command line: a database signed with a key that is missing
gets no new one, and a wrong key is refused before anything is written."""

from __future__ import annotations

import os

from click.testing import CliRunner

from avain.core.cli import cli
from avain.core.integrity_key import generate


def avain(db, *args):
    return CliRunner().invoke(cli, ["--db", f"sqlite:///{db}", *args])


def test_init_makes_no_new_key_for_a_database_signed_with_a_missing_one(tmp_path, monkeypatch):
    monkeypatch.delenv("AVAIN_INTEGRITY_KEY")
    db = tmp_path / "avain.db"
    assert avain(db, "init").exit_code == 0
    key_file = tmp_path / "avain.db.integrity-key"
    key_file.unlink()  # lost, or left out of a restore
    again = avain(db, "init")
    assert again.exit_code == 1
    assert "was signed with one: restore that key" in again.stderr and "Traceback" not in again.output
    assert not key_file.exists()  # no new key that would make the whole trail read as altered


def test_a_wrong_integrity_key_writes_nothing(tmp_path, monkeypatch):
    db = tmp_path / "avain.db"
    assert avain(db, "init").exit_code == 0
    before = avain(db, "audit", "verify", "--json").stdout
    right = os.environ["AVAIN_INTEGRITY_KEY"]
    monkeypatch.setenv("AVAIN_INTEGRITY_KEY", generate().text())
    wrong = avain(db, "worker", "add", "--pilot", "example", "--code", "07", "--name", "A", "--role", "admin")
    assert wrong.exit_code == 1 and "did not sign event" in wrong.stderr and "nothing was written" in wrong.stderr
    monkeypatch.setenv("AVAIN_INTEGRITY_KEY", right)
    after = avain(db, "audit", "verify", "--json")
    assert after.exit_code == 0 and after.stdout == before  # nothing was added under the wrong key
