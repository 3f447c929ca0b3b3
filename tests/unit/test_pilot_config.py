"""pilot.toml validation: every error at once, each with the file and key path."""

from pathlib import Path

import pytest

from avain.core import pilot_config
from avain.core.domain import ConfigSection
from avain.core.errors import ConfigError
from avain.core.plugins import collect

EXAMPLE = Path(__file__).parents[2] / "plugins" / "example_pilot" / "pilot.toml"


def sections(pm):
    return collect(pm, "avain_config_sections")


def test_the_example_pilot_is_valid(pm):
    pilot, data = pilot_config.load_file(EXAMPLE, sections(pm))
    assert pilot.id == "example"
    assert pilot.monthly_cap.cents == 30000
    assert data["intake"]["closes"] == "2030-12-31"
    assert [g.code for g in pilot.groups] == ["F", "E"]


def test_every_error_is_reported_at_once_with_its_path(pm, tmp_path):
    bad = tmp_path / "pilot.toml"
    bad.write_text(
        'id = "Bad Id"\nname = "x"\ncode = "x1"\n'
        '[[groups]]\nid = "a"\ncode = "A"\nname = "A"\n'
        '[[groups]]\nid = "a"\ncode = "B"\nname = "B"\n'
        '[budget]\nmonthly_cap = -5\nsurprise = 1\n'
        '[plugins.example_pilot]\ncarer_contract_required = "maybe"\n'
    )
    with pytest.raises(ConfigError) as err:
        pilot_config.load_file(bad, sections(pm))
    errors = err.value.errors
    src = str(bad)
    assert f"{src}: budget.monthly_cap: -5 is less than the minimum of 0" in errors
    assert f"{src}: id: 'Bad Id' does not fit: Pilot id: lower-case letters, digits and hyphens (e.g. family-care)" \
        in errors  # what is expected in words, never the regular expression
    assert any(e.startswith(f"{src}: code: ") for e in errors)
    assert any("budget: Additional properties are not allowed ('surprise'" in e for e in errors)
    assert any(e.startswith(f"{src}: plugins.example_pilot.carer_contract_required: ")
               for e in errors)
    assert f"{src}: groups.1.id: 'a' is used by another group" in errors
    assert len(errors) == 6


def test_malformed_toml_names_the_file_and_line(pm, tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('id = "x"\nname = \n')
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML: .*line 2"):
        pilot_config.load_file(bad, sections(pm))


def test_missing_file_is_named(pm, tmp_path):
    with pytest.raises(ConfigError, match="nope.toml: no such file"):
        pilot_config.load_file(tmp_path / "nope.toml", sections(pm))


def test_a_plugin_section_is_composed_into_the_schema():
    section = ConfigSection("extra", {"type": "object", "properties": {
        "days": {"type": "integer", "minimum": 1}}, "additionalProperties": False})
    text = ('id = "p1"\nname = "P"\ncode = "P"\n[[groups]]\nid = "g"\ncode = "G"\nname = "G"\n'
            '[plugins.extra]\ndays = 0\n')
    with pytest.raises(ConfigError) as err:
        pilot_config.parse_text(text, [section], source="p.toml")
    assert err.value.errors == ["p.toml: plugins.extra.days: 0 is less than the minimum of 1"]
    pilot, _ = pilot_config.parse_text(text.replace("days = 0", "days = 3"), [section],
                                       source="p.toml")
    assert pilot.sections["extra"]["days"] == 3
    # Without the plugin, its section is unknown and refused.
    with pytest.raises(ConfigError, match=r"plugins.extra: no loaded plugin reads \[plugins.extra\]"):
        pilot_config.parse_text(text, [], source="p.toml")
