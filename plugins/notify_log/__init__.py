"""Notifications of new messages, written to a log file: the example of plugging e-mail or
SMS into the dialogue through the ``avain_message_sent`` event hook.

A pilot switches it on in its pilot.toml::

    [plugins.notify_log]
    file = "/var/log/avain/notifications.log"

Each new message then adds one JSON line per recipient (the thread's other participants)
to that file: when, which pilot and client code, which message, to whom, and what kind
(a participant's message or a workflow step). Never the text, and no names: a
notification says that a message waits, as an SMS from the real service would. A pilot
without the section gets no notifications from this plugin.

A relative ``file`` is taken from the working folder of the command that sent the
message. A line is written with one ``write`` to a file opened for appending, so two
senders at once never interleave their lines. A failure to write is logged (the message
itself is already saved) and does not stop the other notifications.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from avain.core.domain import ConfigSection
from avain.core.hookspecs import hookimpl

NAME = "notify_log"
log = logging.getLogger(__name__)

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["file"],
    "description": "Write a notification line for each recipient of a new message to a log file.",
    "properties": {
        "file": {
            "type": "string",
            "minLength": 1,
            "description": "The log file (JSON lines, appended); relative to the working folder.",
        },
        "system_messages": {
            "type": "boolean",
            "description": "Also notify of the workflow's own steps (proposal approved, invoice paid, …); "
                           "default true.",
        },
    },
}


@hookimpl
def avain_config_sections():
    return [ConfigSection(NAME, SCHEMA, "Notifications of new messages in a log file")]


def notification_lines(message, *, system_messages: bool = True) -> list[str]:
    """The JSON lines for ``message``: one per recipient."""
    if message.author_role == "system" and not system_messages:
        return []
    kind = "workflow" if message.author_role == "system" else "message"
    return [json.dumps({"at": message.sent_at.isoformat(), "pilot": message.pilot_id, "client": message.client_code,
                        "message": message.id, "to": who, "kind": kind, "event": message.event,
                        "attachments": message.attachments}, ensure_ascii=False, sort_keys=True)
            for who in message.recipients]


@hookimpl
def avain_message_sent(pilot, message):
    settings = pilot.sections.get(NAME)
    if not settings:
        return
    lines = notification_lines(message, system_messages=settings.get("system_messages", True))
    if not lines:
        return
    path = Path(settings["file"])
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Owner-only, and never through a symbolic link planted where the log goes.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, "".join(line + "\n" for line in lines).encode("utf-8"))
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("notify_log: cannot write notifications of message %s to %s: %s", message.id, path,
                    exc.strerror or exc)
