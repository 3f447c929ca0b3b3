"""Payment references printed on commitments and quoted on invoices.

The Finnish national reference (viitenumero: digits with a 7-3-1 check digit) and its
international form (RF creditor reference, ISO 11649, checked with python-stdnum). avain
stores the national form; an invoice may quote either.
"""

from __future__ import annotations

from stdnum import iso11649
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.iso7064 import mod_97_10

from .errors import ValidationError

_WEIGHTS = (7, 3, 1)


def _fi_check_digit(base: str) -> str:
    total = sum(int(d) * _WEIGHTS[i % 3] for i, d in enumerate(reversed(base)))
    return str((10 - total % 10) % 10)


def fi_reference(number: int) -> str:
    """The national reference for a running number: at least 4 digits incl. the check."""
    base = f"{number:03d}" if number < 1000 else str(number)
    base = "1" + base  # never starts with 0, so nothing is lost when typed as a number
    return base + _fi_check_digit(base)


def is_fi_reference(ref: str) -> bool:
    return ref.isdigit() and 4 <= len(ref) <= 20 and _fi_check_digit(ref[:-1]) == ref[-1]


def rf_reference(fi_ref: str) -> str:
    """The RF form of a national reference (RFxx + the same digits)."""
    check = mod_97_10.calc_check_digits(fi_ref + "RF")
    return iso11649.validate(f"RF{check}{fi_ref}")


def parse_reference(text: str, *, field_name: str = "--ref") -> str:
    """A reference as typed (spaces allowed, RF or national) → the national form."""
    compact = text.replace(" ", "").upper()
    if compact.startswith("RF"):
        try:
            compact = iso11649.validate(compact)[4:]
        except StdnumError as exc:
            raise ValidationError(f"{field_name}: {text!r} is not a valid RF reference") from exc
    if not is_fi_reference(compact):
        raise ValidationError(f"{field_name}: {text!r} is not a valid reference number "
                              "(the check digit does not match)")
    return compact
