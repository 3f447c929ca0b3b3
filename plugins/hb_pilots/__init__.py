"""The pilots of the national HB project "Avain kansalaisuuteen", one plugin each.

Each subpackage is a plugin of its own, registered through an entry point in
pyproject.toml: a ``pilot.toml`` (the data) and the hookimpls data can't express. The
rules they share — age limits and need-assessment facts, per client group, read from the
pilot's own ``[plugins.<name>]`` section — are in :mod:`.rules`.
"""
