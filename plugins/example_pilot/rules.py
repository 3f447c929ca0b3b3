"""Eligibility rules of the example pilot, testable without a plugin manager."""

from __future__ import annotations

from collections.abc import Mapping

from avain.core.domain import Applicant, Pilot

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "Settings of the example pilot's rules.",
    "properties": {
        "carer_contract_required": {
            "type": "boolean",
            "description": "Families must have a family-carer contract (assessment carer_contract=yes).",
        }
    },
}


def eligibility(pilot: Pilot, client: Applicant, assessment: Mapping[str, str]) -> list[str]:
    """Families need a family-carer contract when the pilot's setting asks for one."""
    settings = pilot.sections.get("example_pilot", {})
    if client.group_id != "family" or not settings.get("carer_contract_required", False):
        return []
    if str(assessment.get("carer_contract", "")).lower() in ("yes", "true", "1"):
        return []
    return ["a family-carer contract is required (give --assess carer_contract=yes)"]
