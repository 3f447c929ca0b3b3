"""``python -m avain.core.i18n compile``: compile every catalogue's ``avain.po`` into the
``avain.mo`` gettext reads at run time; ``check`` exits 1 when a ``.mo`` is missing or out of
date with its ``.po``. Needs Babel (a test dependency); the CLI itself does not."""

from __future__ import annotations

import sys

from . import catalogues


def main(argv: list[str]) -> int:
    if argv not in (["compile"], ["check"]):
        print("usage: python -m avain.core.i18n compile|check", file=sys.stderr)
        return 2
    if argv == ["compile"]:
        for path in catalogues.compile_all():
            print(f"wrote {path}")
        return 0
    stale = catalogues.stale()
    for path in stale:
        print(f"{path} is out of date with its .po: run python -m avain.core.i18n compile", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
