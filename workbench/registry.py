"""Registries of named plugins (erasers, attacks, judges): one place where a name is spelt.

A ``Registry`` collects spec records from two sources, on first use: the modules of a package of
ours (each module's ``SPEC``, or ``SPECS`` for several), then every installed entry point of its
group (``workbench.erasers``, ...), whose object is a spec or a sequence of specs. Names are unique;
a second spec under one name is refused with both origins named. Below every layer: it imports
nothing of the workbench, and nothing heavy (the CLI builds its choices and --help from it).

Options of a spec are a dataclass; ``options_of`` builds one from a mapping and refuses a name it
does not have, listing the ones it has, so a misspelt option fails before any work starts.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownName(ValueError):
    """A name no registry entry has; the message lists the ones it has."""


class Registry(Generic[T]):
    """Named specs of one kind (``kind``: 'eraser', 'attack', 'judge'), from ``package`` and ``group``."""

    def __init__(self, kind: str, group: str, package: str | None = None):
        self.kind, self.group, self.package = kind, group, package
        self._specs: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._loaded = False

    def register(self, spec: T, origin: str = "code") -> T:
        """Add ``spec`` (anything with a ``name``); a second spec under a name already taken is refused."""
        name = spec.name
        if name in self._specs and self._specs[name] is not spec:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({self._origin[name]} and {origin}): rename one of them")
        self._specs[name] = spec
        self._origin[name] = origin
        return spec

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.package is not None:
            pkg = importlib.import_module(self.package)
            for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
                mod = importlib.import_module(f"{self.package}.{info.name}")
                for spec in _specs_of(mod):
                    self.register(spec, mod.__name__)
        from importlib.metadata import entry_points

        for ep in sorted(entry_points(group=self.group), key=lambda e: e.name):
            try:
                found = ep.load()
            except Exception as err:  # a broken plugin names itself, it does not break every command silently
                raise ImportError(f"the {self.kind} plugin {ep.name!r} ({ep.value}, entry point group {self.group}) "
                                  f"does not load: {type(err).__name__}: {err}; fix or uninstall its package") from err  # fmt: skip
            for spec in found if isinstance(found, (list, tuple)) else [found]:
                self.register(spec, f"entry point {ep.value}")
        # listed by the specs' ``order`` (built-ins first), then by name
        self._specs = dict(sorted(self._specs.items(), key=lambda kv: (getattr(kv[1], "order", 100), kv[0])))

    def __getitem__(self, name: str) -> T:
        self._load()
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownName(
                f"unknown {self.kind} {name!r}: use one of {', '.join(self._specs)} (or install a package that registers "
                f"it under the entry point group {self.group}: docs/plugins.md)"
            ) from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._specs))

    def __len__(self) -> int:
        self._load()
        return len(self._specs)

    def names(self) -> tuple[str, ...]:
        return tuple(self)

    def specs(self) -> list[T]:
        return [self[n] for n in self]

    def origin(self, name: str) -> str:
        """Where ``name`` was registered: a module of ours or an entry point."""
        self[name]
        return self._origin[name]

    def __repr__(self) -> str:
        self._load()
        rows = "".join(f"\n  {n}: {getattr(s, 'help', '')} [{self._origin[n]}]" for n, s in self._specs.items())
        return f"<Registry of {len(self._specs)} {self.kind}s ({self.group}){rows}>"


def _specs_of(module) -> list:
    if hasattr(module, "SPECS"):
        return list(module.SPECS)
    return [module.SPEC] if hasattr(module, "SPEC") else []


def options_of(cls: type[T], given: T | Mapping | None, owner: str) -> T:
    """``given`` as an instance of the options dataclass ``cls``: as it is, or built from a mapping
    whose every key must be one of its fields (``owner`` names who takes them, for the message)."""
    if given is None:
        return cls()
    if isinstance(given, cls):
        return given
    if not isinstance(given, Mapping):
        raise TypeError(f"{owner}: options must be a {cls.__name__} or a mapping, not {type(given).__name__}")
    fields = {f.name for f in dataclasses.fields(cls)}
    wrong = sorted(set(given) - fields)
    if wrong:
        raise UnknownName(
            f"{owner} has no option {', '.join(map(repr, wrong))}: its options are {', '.join(sorted(fields)) or 'none'}"
        )
    return cls(**given)


def choices_of(cls: type, name: str) -> tuple | None:
    """The allowed values of option ``name`` of ``cls`` (its field metadata's ``choices``), if any."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.metadata.get("choices")
    return None


def check_choices(options) -> None:
    """Refuse an option value outside its field's ``choices``, naming the field and the valid values."""
    for f in dataclasses.fields(options):
        allowed = f.metadata.get("choices")
        value = getattr(options, f.name)
        if allowed and value is not None and value not in allowed:
            raise ValueError(f"option {f.name}={value!r}: use one of {', '.join(map(str, allowed))}")
