"""avain.core: the neutral engine for personal budgets (HB) in social care.

Nothing in this package names a pilot or imports from ``avain.plugins``; pilots plug in
through the hooks in :mod:`avain.core.hookspecs`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("avain")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
