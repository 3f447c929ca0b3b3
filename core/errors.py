"""One error hierarchy. Domain code and plugins raise; only the CLI turns errors into
messages and exit codes. Messages never carry names or henkilötunnus."""


class AvainError(Exception):
    """Base of every error a user can cause or fix. ``str(err)`` is the one-line message."""

    exit_code = 1


class ValidationError(AvainError):
    """Input that does not satisfy a rule; ``errors`` lists every problem found."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors or [message]


class ConfigError(ValidationError):
    """A pilot.toml or other configuration file that is malformed or breaks its schema.
    ``problems`` lists each problem as ``{"path": key path, "message": …}``."""

    def __init__(self, message: str, errors: list[str] | None = None,
                 problems: list[dict[str, str]] | None = None):
        super().__init__(message, errors)
        self.problems = problems if problems is not None else [
            {"path": "", "message": line} for line in self.errors]


class NotFound(AvainError):
    """A pilot, client, worker or other record that does not exist."""


class Conflict(AvainError):
    """A duplicate, or an operation that the current state does not allow."""


class PermissionDenied(AvainError):
    """The acting user's role does not allow the operation on this subject."""


class Refused(AvainError):
    """A rule (a check hook, an intake cap, the budget) refuses the operation."""

    def __init__(self, message: str, reasons: list[str] | None = None):
        super().__init__(message)
        self.reasons = reasons or []


class DatabaseError(AvainError):
    """The database cannot be reached, or its schema is not the one this avain expects."""


class ServiceUnavailable(AvainError):
    """An outside service a plugin talks to (an e-wallet, a voucher system) cannot be
    reached, timed out or broke off its answer. Nothing it was asked for can be assumed
    done, and nothing was posted in avain for it: running the command again is safe."""


class PluginError(AvainError):
    """A plugin is broken: a misspelt hook, a duplicate record name, a bad registration."""
