"""What an operator sees of data at rest: the phone is never printed, written files are
private, and no command writes through a symbolic link planted where it writes."""

import os
import stat

from test_cli import MINE, as_json, avain, busy, busy_template, populated, populated_template  # noqa: F401

PHONE = "+358401234567"


def test_client_show_says_only_whether_a_phone_is_on_record(populated):  # noqa: F811
    as_json(avain(populated, "--as", "worker:example-01", "client", "phone", MINE, "040 123 4567", "--json"))
    for args in (("client", "show", MINE), ("client", "show", MINE, "--json"),
                 ("client", "find", "--name", "Testi", "--reason", "check", "--json")):
        result = avain(populated, "--as", "worker:example-01", *args)
        assert result.exit_code == 0, result.output
        assert PHONE not in result.output and "401234567" not in result.output and "123 4567" not in result.output
    shown = as_json(avain(populated, "--as", "worker:example-01", "client", "show", MINE, "--json"))
    assert shown["phone"] == "on record"


def _planted(tmp_path, folder, name):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    folder.mkdir(exist_ok=True)
    (folder / name).symlink_to(victim)
    return victim


def test_eval_report_refuses_a_planted_symlink_and_writes_private_files(populated, tmp_path):  # noqa: F811
    out = tmp_path / "report"
    victim = _planted(tmp_path, out, "report.html")
    result = avain(populated, "eval", "report", "--all", "--out", str(out))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"--out: {out / 'report.html'} is a symbolic link" in result.stderr
    assert victim.read_text() == "keep me" and sorted(p.name for p in out.iterdir()) == ["report.html"]
    link = tmp_path / "link"
    link.symlink_to(out)
    result = avain(populated, "eval", "report", "--all", "--out", str(link))
    assert result.exit_code == 1 and f"--out: {link} is a symbolic link" in result.stderr
    (out / "report.html").unlink()
    as_json(avain(populated, "eval", "report", "--all", "--out", str(out), "--json"))
    as_json(avain(populated, "eval", "report", "--all", "--out", str(out), "--json"))  # again: replaced
    for path in out.rglob("*"):
        assert stat.S_IMODE(os.stat(path).st_mode) == (0o700 if path.is_dir() else 0o600), path
    assert sorted(p.name for p in out.iterdir()) == ["charts", "report.html", "report.json"]


def test_catalogue_export_refuses_a_planted_symlink(populated, tmp_path):  # noqa: F811
    out = tmp_path / "register"
    victim = _planted(tmp_path, out, "catalogue.csv")
    result = avain(populated, "catalogue", "export", "--out", str(out))
    assert result.exit_code == 1 and f"--out: {out / 'catalogue.csv'} is a symbolic link" in result.stderr
    assert victim.read_text() == "keep me" and not (out / "catalogue.json").exists()


def test_eval_export_refuses_a_symlink_for_its_folder(populated, tmp_path):  # noqa: F811
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "export").symlink_to(real)
    result = avain(populated, "--as", "evaluator:example-05", "eval", "export", "--out", str(tmp_path / "export"))
    assert result.exit_code == 1 and "is a symbolic link" in result.stderr and not any(real.iterdir())


def test_pay_batch_refuses_a_symlink_before_making_the_batch(busy, tmp_path):  # noqa: F811
    path, _ = busy
    victim = tmp_path / "victim.xml"
    victim.write_text("keep me")
    (tmp_path / "batch.xml").symlink_to(victim)
    result = avain(path, "--as", "finance:example-04", "pay", "batch", "--pilot", "example", "--date", "2018-02-28",
                   "--out", str(tmp_path / "batch.xml"))
    assert result.exit_code == 1 and "batch.xml is a symbolic link" in result.stderr
    assert victim.read_text() == "keep me"
    done = avain(  # the approved invoice is still unbatched: the refused command made no batch
path, "--as", "finance:example-04", "pay", "batch", "--pilot", "example", "--date", "2018-02-28",
                 "--out", str(tmp_path / "real.xml"))
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE(os.stat(tmp_path / "real.xml").st_mode) == 0o600
