"""A month the letters' tests write documents about: the example pilot, two clients of
example-01 with decisions for 2018 and January open; the first client bought twice: one
commitment invoiced and paid (100,00 € of 123,45 €), one still pending (50,00 €)."""

from __future__ import annotations

import datetime as dt
import json

from helpers import HETUS, PROVIDERS, approve, month_ready, pay_approved, propose
from sqlalchemy import update

from avain.core.auth import Actor
from avain.core.domain import Money
from avain.core.models import PilotRow
from avain.core.services import purchases

NAME = "Testi Henkilö"  # helpers.enroll's name for every client
HETU = HETUS[0]
#: What the example pilot's [letters] is set to in the scenario.
LETTERS = {"review_body": "Esimerkkilän sosiaali- ja terveyslautakunnan yksilöjaosto",
           "review_address": "Kirjaamo, PL 1, 99999 Esimerkkilä",
           "einvoice_address": "003712345678", "einvoice_operator": "OKOYFIHH"}


def configure_letters(app, values=LETTERS) -> None:
    with app.engine.begin() as conn:
        config = json.loads(conn.execute(PilotRow.__table__.select().where(PilotRow.id == "example"))
                            .one().config)
        config["letters"] = dict(values)
        conn.execute(update(PilotRow).where(PilotRow.id == "example").values(config=json.dumps(config)))


def scenario(app) -> dict:
    team, codes = month_ready(app, clients=2)
    configure_letters(app)
    paid = approve(app, team, propose(app, codes[0], 12345))
    inv = app.run(Actor("finance", "example-04"), purchases.record_invoice, provider_id=PROVIDERS[0], number="INV-1",
                  amount=Money(10000), reference=paid["reference"], on_date=dt.date(2018, 1, 20),
                  final=True)
    app.run(Actor("supervisor", team["supervisor"]), purchases.approve_invoice, inv["id"])
    pay_approved(app)
    pending = approve(app, team, propose(app, codes[0], 5000, provider=PROVIDERS[1], day=dt.date(2018, 1, 25)))
    return {"team": team, "codes": codes, "paid": paid, "pending": pending}
