"""``avain plugin new NAME``: an installable third-party pilot plugin to start from.

The package it writes is the smallest complete pilot: its own ``pyproject.toml`` that
registers the plugin in avain's entry-point group, a ``pilot.toml``, a hookimpl for a rule
data can't express (eligibility from the need assessment, switched on by the pilot's own
section) with its description for ``avain pilot show``, and a test that runs the rule
through avain's services. docs/writing-a-pilot.md walks through it.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import Conflict, ValidationError

NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")

PYPROJECT = '''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "avain-{dist}"
version = "0.1.0"
description = "The {pilot_id} pilot for avain"
requires-python = ">=3.11"
dependencies = ["avain"]

[project.optional-dependencies]
test = ["pytest>=8"]

# avain finds the plugin here: `avain plugin list` shows it as "entry point avain-{dist} 0.1.0".
[project.entry-points.avain]
{name} = "avain_{name}"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
"avain_{name}" = ["pilot.toml"]
'''

INIT = '''"""The {pilot_id} pilot: ``pilot.toml`` holds its data; the hookimpls below add what
data can't express."""

from __future__ import annotations

from pathlib import Path

from avain.core.domain import ConfigSection, PilotSource
from avain.core.hookspecs import hookimpl

SECTION = "{name}"
SCHEMA = {{
    "type": "object",
    "additionalProperties": False,
    "description": "Who may join the {pilot_id} pilot.",
    "properties": {{
        "min_age": {{"type": "integer", "minimum": 0,
                     "description": "At least this old on the day of the enrolment."}},
        "required_fact": {{"type": "string", "description": "A need-assessment fact that must be yes."}},
    }},
}}


@hookimpl
def avain_pilots():
    return [PilotSource("{pilot_id}", str(Path(__file__).with_name("pilot.toml")))]


@hookimpl
def avain_config_sections():
    return [ConfigSection(SECTION, SCHEMA, "Who may join the {pilot_id} pilot")]


@hookimpl
def avain_check_eligibility(pilot, client, assessment):
    settings = pilot.sections.get(SECTION)
    if settings is None:  # not a pilot of this plugin
        return None
    reasons = []
    fact = settings.get("required_fact")
    if fact and str(assessment.get(fact, "")).lower() != "yes":
        reasons.append(f"the need assessment must say {{fact}}=yes (give --assess {{fact}}=yes)")
    minimum = settings.get("min_age")
    if minimum is not None and client.birth_date is not None and client.on_date is not None:
        day, born = client.on_date, client.birth_date
        age = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
        if age < minimum:
            reasons.append(f"the client must be at least {{minimum}} (is {{age}})")
    return reasons


@hookimpl
def avain_pilot_rules(pilot):
    settings = pilot.sections.get(SECTION)
    if settings is None:
        return None
    words = []
    if settings.get("min_age") is not None:
        words.append(f"clients are at least {{settings['min_age']}} on the day of the enrolment")
    if settings.get("required_fact"):
        words.append(f"the need assessment says {{settings['required_fact']}}=yes")
    return words
'''

PILOT_TOML = '''# The {pilot_id} pilot. Every key is described in avain's docs/pilot-config.md;
# `avain pilot check` validates this file.
id = "{pilot_id}"
name = "{title}"
code = "{code}"
organiser = "Organiser of the {pilot_id} pilot"
description = "Describe who the pilot is for and what its budgets buy."
services = ["cleaning", "meals", "transport", "escort"]

[[groups]]
id = "clients"
code = "A"
name = "Clients of the pilot"
max_clients = 20
demo = {{ ages = [25, 80], assessment = {{ {fact} = "yes" }} }}

[intake]
max_clients = 20

[budget]
monthly_cap = 40000
default_monthly = 30000
months_open = 1
period_end = "lapse"

[payment]
debtor_name = "Organiser of the {pilot_id} pilot"
debtor_iban = "FI4950009420028730"

[workflow]
confirm_receipt = false
invoice_approver = "supervisor"

[plugins.{name}]
min_age = 18
required_fact = "{fact}"
'''

TEST = '''"""The {pilot_id} pilot's rule, through avain's own services on a fresh SQLite file."""

import datetime as dt

import pytest

from avain.core.app import App
from avain.core.auth import Actor
from avain.core.errors import Refused
from avain.core.services import people, pilots

ADMIN = Actor("admin")


@pytest.fixture
def app(tmp_path):
    application = App.open(f"sqlite:///{{tmp_path / 'avain.db'}}")  # created, migrated, pilots loaded
    yield application
    application.close()


def enroll(app, worker, hetu, **assessment):
    return app.run(ADMIN, people.enroll, pilot_id="{pilot_id}", hetu=hetu, name="Testi Henkilö",
                   worker_id=worker, assessment=assessment, on_date=dt.date(2018, 1, 1))["code"]


def test_the_pilot_is_loaded_and_applies_its_rule(app):
    assert "{pilot_id}" in [p["id"] for p in app.run(ADMIN, pilots.list_pilots)]
    worker = app.run(ADMIN, people.add_worker, pilot_id="{pilot_id}", code="01", name="Worker",
                     role="worker")["id"]
    assert enroll(app, worker, "131052-308T", {fact}="yes") == "{code}-A-01-001"
    with pytest.raises(Refused, match="{fact}=yes"):
        enroll(app, worker, "010594Y123W")
    with pytest.raises(Refused, match="at least 18"):
        enroll(app, worker, "020202A234Y", {fact}="yes")  # 15 on 2018-01-01
    rules = app.run(ADMIN, pilots.show, "{pilot_id}")["rules"]
    assert "clients are at least 18 on the day of the enrolment" in rules
'''

README = '''# avain-{dist}: the {pilot_id} pilot for avain

```sh
pip install -e '.[test]'     # beside avain; avain finds the plugin through its entry point
avain plugin list            # shows {name} (entry point avain-{dist} 0.1.0)
avain pilot show {pilot_id}
pytest
```

Change `src/avain_{name}/pilot.toml` (check it with `avain pilot check`) and the rules in
`src/avain_{name}/__init__.py`; avain's docs/writing-a-pilot.md explains every hook.
'''


def new_plugin(name: str, parent: Path) -> Path:
    """Write the package ``avain-<name>`` under ``parent``; returns its folder. Refuses a
    name that is not a Python identifier in lower case, and a folder that exists."""
    if not NAME.match(name):
        raise ValidationError(f"NAME: {name!r} must be 2–31 lower-case letters, digits or _, starting with a letter")
    dist = name.replace("_", "-")
    root = parent / f"avain-{dist}"
    if root.exists():
        raise Conflict(f"{root} exists already: choose another NAME or --dir")
    values = {"name": name, "dist": dist, "pilot_id": dist, "title": f"The {dist} pilot",
              "code": (re.sub("[^a-z]", "", name).upper() + "X")[:2], "fact": "hb_offered"}
    files = {
        "pyproject.toml": PYPROJECT, "README.md": README, f"src/avain_{name}/__init__.py": INIT,
        f"src/avain_{name}/pilot.toml": PILOT_TOML, f"tests/test_{name}.py": TEST,
    }
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
    return root
