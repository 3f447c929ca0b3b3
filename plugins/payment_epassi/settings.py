"""The pilot's ePassi settings: ``[plugins.payment_epassi]`` in pilot.toml."""

from __future__ import annotations

from attrs import frozen

from avain.core.domain import Pilot
from avain.core.errors import ConfigError

NAME = "payment_epassi"
BACKEND = "epassi"
DEFAULT_URL = "http://127.0.0.1:8765"

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "How avain reaches the pilot's ePassi e-wallet service.",
    "properties": {
        "url": {
            "type": "string",
            "pattern": "^https?://[^\\s/]+(/[^\\s]*)?$",
            "description": f"Base URL of the ePassi service (default {DEFAULT_URL}, the local simulator).",
        },
        "identity_check_required": {
            "type": "boolean",
            "description": "Providers must check the client's identity before a charge; a charge "
                           "without the check is refused (default false).",
        },
        "timeout_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 120,
            "description": "Seconds to wait for the service before giving up (default 10).",
        },
    },
}


@frozen
class Settings:
    url: str = DEFAULT_URL
    identity_check_required: bool = False
    timeout_seconds: float = 10.0

    @classmethod
    def of(cls, pilot: Pilot) -> Settings:
        """The settings of a pilot that pays through ePassi; any other pilot is refused."""
        backend = pilot.raw.get("payment", {}).get("backend")
        if backend != BACKEND:
            said = f"payment.backend is {backend!r}, not {BACKEND!r}" if backend else "no payment.backend"
            raise ConfigError(f"pilot {pilot.id}: {said}: its budgets are not on ePassi wallets")
        section = pilot.sections.get(NAME, {})
        return cls(url=section.get("url", DEFAULT_URL),
                   identity_check_required=section.get("identity_check_required", False),
                   timeout_seconds=float(section.get("timeout_seconds", 10.0)))
