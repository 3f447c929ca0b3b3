"""Text enters avain once, checked: control and direction characters are refused in the
services' text inputs, a henkilötunnus is refused in the free texts that go to the audit
trail, nothing is written for a refused input, and the public catalogue.csv cannot carry a
spreadsheet formula."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
from helpers import EXAMPLE_TOML, HETUS, PROVIDERS, month_ready, propose

from avain.core.auth import Actor
from avain.core.domain import Money
from avain.core.errors import ConfigError, ValidationError
from avain.core.services import audit_log, catalogue, people, pilots, providers, purchases

ADMIN = Actor("admin")
ESCAPE = "Siivous\x1b]0;hacked\x07\x1b[2J"
OVERRIDE = "Kotiapu Oy \u202eexe.gpj"


def _proposals(app, code):
    return app.read(ADMIN, purchases.list_proposals, code=code)


def _audit_text(app) -> str:
    return json.dumps(app.read(ADMIN, audit_log.log, limit=10_000), ensure_ascii=False)


def test_a_proposal_text_with_a_terminal_escape_is_refused_and_nothing_is_written(app):
    team, (code,) = month_ready(app, clients=1)
    before = _proposals(app, code)
    with pytest.raises(ValidationError, match=r"^--text: a control or direction character \(U\+001B\)"):
        app.run(Actor("client", code), purchases.propose, code, service="cleaning", provider_id=PROVIDERS[0],
                amount=Money(1000), service_date=dt.date(2018, 1, 15), text=ESCAPE)
    assert _proposals(app, code) == before
    # A text over several lines keeps its line breaks.
    pid = app.run(Actor("client", code), purchases.propose, code, service="cleaning", provider_id=PROVIDERS[0],
                  amount=Money(1000), service_date=dt.date(2018, 1, 15), text="Tuesdays\r\n\tand Fridays")["id"]
    assert [p["text"] for p in _proposals(app, code) if p["id"] == pid] == ["Tuesdays\n\tand Fridays"]


@pytest.mark.parametrize("name", [ESCAPE, OVERRIDE])
def test_a_provider_name_with_control_or_direction_characters_is_refused(app, name):
    with pytest.raises(ValidationError, match=r"^--name: a control or direction character"):
        app.run(ADMIN, providers.add, business_id=PROVIDERS[0], name=name)
    app.run(ADMIN, providers.add, business_id=PROVIDERS[0], name="Kotiapu Oy")
    with pytest.raises(ValidationError, match=r"^--name: a control or direction character"):
        app.run(ADMIN, providers.update, PROVIDERS[0], name=name)
    assert app.read(ADMIN, providers.show, PROVIDERS[0])["name"] == "Kotiapu Oy"


@pytest.mark.parametrize("hetu", [HETUS[2], HETUS[2].replace("-", "")])
def test_a_henkilotunnus_in_a_reason_is_refused_and_never_reaches_the_audit_trail(app, hetu):
    team, (code,) = month_ready(app, clients=1)
    pid = propose(app, code, 1000)
    worker = Actor("worker", team["worker"])
    with pytest.raises(ValidationError) as err:
        app.run(worker, purchases.reject, pid, reason=f"the client {hetu} cancelled")
    assert str(err.value).startswith("--reason: looks like it holds a henkilötunnus")
    assert hetu not in str(err.value)
    with pytest.raises(ValidationError, match="^--reason: looks like it holds a henkilötunnus"):
        app.run(ADMIN, people.identify, code, reason=f"phone call, {hetu}")
    assert hetu not in _audit_text(app)
    assert [p["status"] for p in _proposals(app, code) if p["id"] == pid] == ["proposed"]


def test_a_pilot_toml_with_a_control_character_is_refused_naming_the_key(app, tmp_path):
    path = tmp_path / "pilot.toml"
    text = EXAMPLE_TOML.read_text(encoding="utf-8").replace('id = "example"', 'id = "example2"', 1)
    name_line = next(line for line in text.splitlines() if line.startswith("name = "))
    path.write_text(text.replace(name_line, 'name = "Esimerkki\\u001b[2J"', 1), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        app.run(ADMIN, pilots.add_file, path)
    assert any(line.endswith("name: a control or direction character (U+001B) is not allowed in text")
               for line in err.value.errors), err.value.errors


def test_a_catalogue_import_row_with_a_control_character_is_rejected_naming_the_field(app, tmp_path):
    path = tmp_path / "services.csv"
    path.write_text("code;name_fi;category;unit\nkotisiivous;Kotisiivous\u202e;home;hour\n", encoding="utf-8")
    result = app.run(ADMIN, catalogue.import_file, path)
    assert result["added"] == 0
    assert [r["reason"] for r in result["rejected"]] == [
        "name_fi: a control or direction character (U+202E) is not allowed in text"]


def test_the_public_catalogue_csv_holds_no_formula(app, tmp_path):
    month_ready(app, clients=1)
    formula = '=HYPERLINK("http://evil.example/","Kotiapu")'
    # A name stored before avain checked names (or by a plugin): straight into the table.
    from sqlalchemy import text as sql

    with app.engine.begin() as conn:
        conn.execute(sql("UPDATE provider SET name = :n WHERE id = :i"), {"n": formula, "i": PROVIDERS[0]})
    data = app.read(ADMIN, catalogue.export, on_date=dt.date(2018, 1, 15))
    catalogue.write_export(data, tmp_path)
    with (tmp_path / "catalogue.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cells = [v for row in rows for v in row.values()]
    assert "'" + formula in cells
    assert not [v for v in cells if v and v[0] in "=+@\t\r"]


def test_a_providers_contact_and_areas_are_checked_too(app):
    with pytest.raises(ValidationError, match=r"^--contact: a control or direction character \(U\+202E\)"):
        app.run(ADMIN, providers.add, business_id=PROVIDERS[0], name="Kotiapu Oy", contact="Anna \u202eytsem")
    with pytest.raises(ValidationError, match=r"^--area: a control or direction character \(U\+001B\)"):
        app.run(ADMIN, providers.add, business_id=PROVIDERS[0], name="Kotiapu Oy", areas=["Kajaani\x1b[2J"])
    app.run(ADMIN, providers.add, business_id=PROVIDERS[0], name="Kotiapu Oy")
    with pytest.raises(ValidationError, match=r"^--contact: a control or direction character"):
        app.run(ADMIN, providers.update, PROVIDERS[0], contact="x\x07")


def test_a_survey_answer_with_a_control_character_is_a_problem_naming_the_item(pm):
    from avain.core.services import evaluation

    instrument = evaluation.registry_of(pm)["satisfaction-hb"]
    assert evaluation.validate(instrument, {"open_feedback": "good\x1b]0;x\x07"}) == [
        "open_feedback: a control or direction character (U+001B) is not allowed in text"]
    assert evaluation.validate(instrument, {"open_feedback": "good,\nthank you"}) == []
