"""The plugin manager: built-in plugins, entry-point plugins, and record collection."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError

#: Built-in plugins, loaded by module name. The core's own fallbacks come first; the
#: rest are optional features and pilots shipped with avain.
CORE_PLUGINS = ("avain.core.defaults",)
DEFAULT_PLUGINS = (
    "avain.plugins.catalogue_fi",
    "avain.plugins.budget_calculator",
    "avain.plugins.example_pilot",
)

#: Entry-point group third-party plugins register in.
ENTRY_POINT_GROUP = "avain"


@attrs.frozen
class LoadedPlugin:
    name: str
    source: str
    module: str
    hooks: tuple[str, ...]


def _allowed() -> set[str] | None:
    """``AVAIN_LOAD_PLUGINS=a,b`` loads only those plugins (the core's own always load);
    set but empty, it loads none."""
    value = os.environ.get("AVAIN_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _short_name(module_name: str) -> str:
    return module_name.rsplit(".", 1)[-1]


class AvainPluginManager(pluggy.PluginManager):
    """pluggy's manager plus where each plugin came from."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.sources: dict[str, str] = {}


def _register(pm: AvainPluginManager, plugin: Any, name: str | None = None) -> None:
    """Register, turning pluggy's complaint about a hookimpl that asks for an argument its
    hook does not have into a PluginError naming the plugin."""
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name or getattr(plugin, '__name__', plugin)}: {exc}") from exc


def make_plugin_manager(extra: Iterable[Any] = ()) -> AvainPluginManager:
    """A fresh manager: core fallbacks, the built-in plugins, entry-point plugins, then
    ``extra`` (plugin objects, as tests register). Misspelt hooks fail here."""
    pm = AvainPluginManager()
    pm.add_hookspecs(hookspecs)
    allowed = _allowed()
    for module_name in CORE_PLUGINS:
        _register(pm, importlib.import_module(module_name), _short_name(module_name))
    for module_name in DEFAULT_PLUGINS:
        name = _short_name(module_name)
        if allowed is not None and name not in allowed:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # a broken install, not a user mistake
            raise PluginError(f"built-in plugin {name} cannot be imported: {exc}") from exc
        _register(pm, module, name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None:
            raise PluginError(f"plugin name {ep.name!r} is used twice")
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {ep.name} ({ep.value}) cannot be loaded: {exc}") from exc
        _register(pm, plugin, ep.name)
        dist = getattr(ep, "dist", None)
        pm.sources[ep.name] = f"entry point {dist.name} {dist.version}" if dist else "entry point"
    for plugin in extra:
        _register(pm, plugin)
    check(pm)
    return pm


def check(pm: pluggy.PluginManager) -> None:
    """Fail when a plugin implements an ``avain_`` hook that does not exist."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a plugin implements an unknown hook: {exc}") from exc


def loaded_plugins(pm: AvainPluginManager) -> list[LoadedPlugin]:
    """What is loaded, from where, implementing which hooks (for ``avain plugin list``)."""
    sources = pm.sources
    out = []
    for name, plugin in pm.list_name_plugin():
        module = getattr(plugin, "__name__", type(plugin).__module__)
        if name in sources:
            source = sources[name]
        elif module in CORE_PLUGINS:
            source = "core"
        elif module in DEFAULT_PLUGINS:
            source = "built-in"
        else:
            source = "registered"
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        out.append(LoadedPlugin(name=name, source=source, module=module, hooks=hooks))
    return sorted(out, key=lambda p: (p.source != "core", p.name))


def collect(pm: pluggy.PluginManager, hook_name: str, key=lambda r: r.name) -> list[Any]:
    """Call a registration hook and flatten the records; duplicate names are an error."""
    seen: dict[str, Any] = {}
    for result in getattr(pm.hook, hook_name)():
        for record in result or ():
            name = key(record)
            if name in seen:
                raise PluginError(f"{hook_name}: two plugins register the name {name!r}")
            seen[name] = record
    return list(seen.values())
