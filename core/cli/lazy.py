"""Commands and modules loaded when first used, so that ``avain --version``, ``avain
--help`` and ``avain GROUP --help`` start without the database, report or chart libraries.

Two tools, both light to import:

- :class:`LazyCommand`: a placeholder for a top-level command whose module is imported only
  when that command runs or its help is shown. It carries the command's name and the first
  paragraph of its help, so that ``avain --help`` lists it without importing it. A plugin
  returns one from ``avain_commands``::

      @hookimpl
      def avain_commands():
          return [LazyCommand("eval", "avain.plugins.evaluation.cli:evaluation",
                              "The evaluation: instruments and responses, …")]

- :func:`lazy_module`: a module object whose code runs on first attribute access, for the
  services a command module calls only inside its commands.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

import click


class LazyCommand(click.Command):
    """Stands for the command at ``import_path`` (``"package.module:attribute"``) until the
    ``avain`` group loads it. ``help`` must be the first paragraph of the real command's
    help: ``avain --help`` shows it, shortened as click shortens it (a contract test keeps
    the core's in step)."""

    def __init__(self, name: str, import_path: str, help: str) -> None:
        super().__init__(name, help=help)
        self.import_path = import_path

    def load(self) -> click.Command:
        """Import the real command; it must carry the name it was announced with."""
        module_name, _, attribute = self.import_path.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command) or command.name != self.name:
            raise TypeError(f"{self.import_path} is not the command {self.name!r}")
        return command


def lazy_module(name: str) -> ModuleType:
    """The module ``name``, imported now if it already is, else on first attribute access
    (``importlib.util.LazyLoader``). Use it for a module read only inside functions."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:  # as a real import does: ``avain.core.services.people`` is an attribute too
        setattr(sys.modules[parent], child, module)
    return module
