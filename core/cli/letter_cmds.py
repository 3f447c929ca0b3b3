"""``avain decision letter``, ``avain commitment letter``, ``avain ledger letter``: the
documents an authority gives, as HTML and PDF, added to the existing groups."""

from __future__ import annotations

from pathlib import Path

import click

from ..i18n import LANGUAGES
from .budget_cmds import decision, ledger
from .lazy import lazy_module
from .output import emit, json_option
from .params import DATE, PERIOD
from .state import state
from .workflow_cmds import commitment

# read only inside the commands: imported when one of them runs
letter_facts = lazy_module("avain.core.services.letters")

LANG = click.Choice(LANGUAGES)
out_option = click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
                          metavar="DIR", help="Folder the HTML and PDF are written into (made if missing).")
date_option = click.option("--date", "sent_on", type=DATE,
                           help="Day the letter is sent (default: today); the review deadline counts from it.")
reason_option = click.option("--reason", default=None,
                             help="Why the client's name is read, for the access log (roles that may identify).")


def client_letter_options(fn):
    """The options of a letter to a client: language, the reason for reading the name,
    the sending day, the folder, --json."""
    for option in reversed((click.option("--lang", type=LANG, help="fi, sv or en (default: the client's "
                                                                "language)."),
                            reason_option, date_option, out_option, json_option)):
        fn = option(fn)
    return fn


def _write(kind: str, doc: dict, out: Path, stem: str, as_json: bool) -> None:
    from ..letters import write_letter

    files = write_letter(kind, doc, out, stem)
    data = {"document": kind, "language": doc["lang"], "files": [str(f) for f in files]}
    if kind == "decision":
        data["review_deadline"] = doc["deadline"].isoformat()
    emit(data, as_json, lambda c, d: c.print("\n".join(d["files"]), highlight=False))


@decision.command("letter")
@click.argument("code")
@click.option("--decision", "decision_id", type=int, metavar="ID",
              help="Which decision (default: the newest in force).")
@client_letter_options
def decision_letter(code, decision_id, lang, reason, sent_on, out, as_json):
    """Write a decision as a letter to the client (HTML and PDF) with appeal instructions."""
    doc = state().run(letter_facts.decision_letter, code, decision_id=decision_id, lang=lang,
                      reason=reason or "decision letter", sent_on=sent_on)
    _write("decision", doc, out, f"decision-{doc['decision']['id']}-{doc['lang']}", as_json)


@commitment.command("letter")
@click.argument("commitment_id", metavar="ID", type=int)
@click.option("--lang", type=LANG, default="fi", show_default=True, help="fi, sv or en.")
@date_option
@out_option
@json_option
def commitment_letter(commitment_id, lang, sent_on, out, as_json):
    """Write a payment commitment for the provider (HTML and PDF): no client name in it."""
    doc = state().run(letter_facts.commitment_letter, commitment_id, lang=lang, sent_on=sent_on)
    _write("commitment", doc, out, f"commitment-{commitment_id}-{doc['lang']}", as_json)


@ledger.command("letter")
@click.argument("code")
@click.option("--period", type=PERIOD, required=True, help="The month.")
@client_letter_options
def statement_letter(code, period, lang, reason, sent_on, out, as_json):
    """Write a client's monthly statement as a letter (HTML and PDF)."""
    doc = state().run(letter_facts.statement_letter, code, period, lang=lang,
                      reason=reason or "statement letter", sent_on=sent_on)
    _write("statement", doc, out, f"statement-{code}-{period}-{doc['lang']}", as_json)
