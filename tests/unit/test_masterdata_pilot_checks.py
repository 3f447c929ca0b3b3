"""pilot.toml checks beyond the schema's types: whole numbers that TOML wrote as floats,
sections of plugins that are not loaded, IBAN checksums and unknown services — all
reported at once, each with its key path."""

import pytest

from avain.core import pilot_config
from avain.core.domain import ConfigSection
from avain.core.errors import ConfigError

BASE = 'id = "p1"\nname = "P"\ncode = "P"\n{top}[[groups]]\nid = "g"\ncode = "G"\nname = "G"\n{tables}'
CALCULATOR = ConfigSection("budget_calculator", {"type": "object"}, "prices")


def problems(top="", tables="", sections=(CALCULATOR,), services=None):
    with pytest.raises(ConfigError) as err:
        pilot_config.parse_text(BASE.format(top=top, tables=tables), list(sections), source="p.toml",
                                known_services=services)
    return err.value


def test_a_float_cap_is_reported_with_its_path_among_the_other_errors():
    """Regression: ``monthly_cap = 400.0`` passed the schema (2020-12 calls it an integer)
    and was then refused alone, with no path, by Money."""
    error = problems(tables="[budget]\nmonthly_cap = 400.0\ndefault_monthly = -1\n")
    assert error.problems == [
        {"path": "budget.default_monthly", "message": "-1 is less than the minimum of 0"},
        {"path": "budget.monthly_cap", "message": "400.0 is not of type 'integer'"},
    ]
    assert error.errors[1] == "p.toml: budget.monthly_cap: 400.0 is not of type 'integer'"


def test_a_section_of_a_plugin_that_is_not_loaded_is_named_as_such():
    error = problems(tables="[plugins.budget_calculator]\n[budget]\nmonthly_cap = 1.5\n", sections=())
    assert [p["path"] for p in error.problems] == ["budget.monthly_cap", "plugins.budget_calculator"]
    assert "no loaded plugin reads [plugins.budget_calculator]" in error.errors[1]


def test_ibans_are_checked_wherever_they_are():
    error = problems(tables='[payment]\ndebtor_iban = "FI2112345600000786"\n'
                            '[plugins.budget_calculator]\nrefund_iban = "FI21 1234 5600 0007 8"\n')
    assert error.problems == [
        {"path": "payment.debtor_iban", "message": "not a valid IBAN (the check digits do not match)"},
        {"path": "plugins.budget_calculator.refund_iban",
         "message": "not a valid IBAN (wrong country code, length or characters)"},
    ]
    assert "FI2112345600000786" not in "".join(error.errors)
    pilot, _ = pilot_config.parse_text(BASE.format(top="", tables='[payment]\ndebtor_iban = "FI2112345600000785"\n'),
                                       [CALCULATOR], source="p.toml")
    assert pilot.raw["payment"]["debtor_iban"] == "FI2112345600000785"


def test_services_no_one_knows_are_flagged_only_when_the_known_ones_are_given():
    top = 'services = ["cleaning", "unicorn-rides", "meals"]\n'
    error = problems(top=top, services={"cleaning", "meals"})
    assert error.problems == [{"path": "services.1", "message": "'unicorn-rides' is a service no loaded "
                                                                "plugin and no catalogue import knows"}]
    pilot, _ = pilot_config.parse_text(BASE.format(top=top, tables=""), [], source="p.toml")
    assert pilot.id == "p1"
