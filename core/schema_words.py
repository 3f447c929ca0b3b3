"""JSON Schema errors as an operator reads them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from jsonschema import ValidationError as SchemaError


def in_words(error: SchemaError) -> str:
    """The error's message, except that a value not matching a ``pattern`` is told what is
    expected (the property's description), never the regular expression."""
    if error.validator == "pattern":
        expected = str(error.schema.get("description") or "the form expected here").rstrip(".")
        return f"{error.instance!r} does not fit: {expected}"
    return error.message
