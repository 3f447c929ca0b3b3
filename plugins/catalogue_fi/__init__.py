"""The Finnish social-care service catalogue: the services the HB pilots buy, as data
(``services.json``)."""

from __future__ import annotations

import json
from pathlib import Path

from avain.core.domain import Service
from avain.core.hookspecs import hookimpl

DATA = Path(__file__).with_name("services.json")


def load() -> list[Service]:
    rows = json.loads(DATA.read_text(encoding="utf-8"))["services"]
    return [Service(r["code"], r["name_fi"], r["category"], r["unit"], r.get("name_sv"),
                    r.get("name_en"), r.get("note")) for r in rows]


@hookimpl
def avain_services():
    return load()
