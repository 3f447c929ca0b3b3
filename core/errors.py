"""One error hierarchy. Domain code and plugins raise; only the CLI turns errors into
messages and exit codes. Messages never carry names or henkilötunnus."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AvainError(Exception):
    """Base of every error a user can cause or fix.

    A face (the CLI, a web form, the HTTP API) presents an error from its data, not from
    its words:

    - ``error_code`` (class attribute): the stable kind of error — ``refused``,
      ``not_found``, ``invalid``… — which decides the exit code or the HTTP status;
    - ``code``: the stable name of this particular refusal, dotted
      (``proposal.amount_over_budget``, ``worker.unknown``); the kind when the raiser
      gave none;
    - ``field``: the record field, file or key it is about (``amount``, ``pilot.toml``),
      in the domain's words, never a command-line option;
    - ``values``: what a face needs to explain it or to offer what would do
      (``{"left": Money, "allowed": [...]}``);
    - ``str(err)``: a one-line message in the reader's language that names no command,
      no option and no page: the CLI adds those (see ``avain.core.cli.hints``).
    """

    exit_code = 1
    error_code = "error"

    def __init__(self, *args: object, field: str | None = None, code: str | None = None,
                 values: Mapping[str, Any] | None = None):
        super().__init__(*args)
        #: The record field, file or key the error is about, when the raiser knows it.
        self.field = field
        #: The stable name of this refusal (defaults to the kind, ``error_code``).
        self.code = code or self.error_code
        #: The values that explain the refusal or would do instead.
        self.values: dict[str, Any] = dict(values or {})


class ValidationError(AvainError):
    """Input that does not satisfy a rule; ``errors`` lists every problem found."""

    error_code = "invalid"

    def __init__(self, message: str, errors: list[str] | None = None, *, field: str | None = None,
                 code: str | None = None, values: Mapping[str, Any] | None = None):
        super().__init__(message, field=field, code=code, values=values)
        self.errors = errors or [message]


class ConfigError(ValidationError):
    """A pilot.toml or other configuration file that is malformed or breaks its schema.
    ``problems`` lists each problem as ``{"path": key path, "message": …}``."""

    def __init__(self, message: str, errors: list[str] | None = None,
                 problems: list[dict[str, str]] | None = None):
        super().__init__(message, errors)
        self.problems = problems if problems is not None else [
            {"path": "", "message": line} for line in self.errors]

    error_code = "config"


class NotFound(AvainError):
    """A pilot, client, worker or other record that does not exist."""

    error_code = "not_found"


class Conflict(AvainError):
    """A duplicate, or an operation that the current state does not allow."""

    error_code = "conflict"


class PermissionDenied(AvainError):
    """The acting user's role does not allow the operation on this subject."""

    error_code = "permission_denied"


class Refused(AvainError):
    """A rule (a check hook, an intake cap, the budget) refuses the operation."""

    error_code = "refused"

    def __init__(self, message: str, reasons: list[str] | None = None, *, field: str | None = None,
                 code: str | None = None, values: Mapping[str, Any] | None = None):
        super().__init__(message, field=field, code=code, values=values)
        self.reasons = reasons or []


class DatabaseError(AvainError):
    """The database cannot be reached, or its schema is not the one this avain expects."""

    error_code = "database"


class ServiceUnavailable(AvainError):
    """An outside service a plugin talks to (an e-wallet, a voucher system) cannot be
    reached, timed out or broke off its answer. Nothing it was asked for can be assumed
    done, and nothing was posted in avain for it: running the command again is safe."""

    error_code = "service_unavailable"


class PluginError(AvainError):
    """A plugin is broken: a misspelt hook, a duplicate record name, a bad registration."""

    error_code = "plugin"


class FileError(AvainError):
    """A file or folder given on the command line cannot be read or written (no such file,
    no permission, a folder where a file was expected)."""

    error_code = "file"

    @classmethod
    def of(cls, exc: OSError) -> FileError:
        where = str(exc.filename) if exc.filename is not None else "file"
        return cls(f"{where}: {exc.strerror or type(exc).__name__}", field=where)
