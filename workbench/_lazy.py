"""Attributes that load their module on first use (PEP 562), for the package facades: listing
prompt sets or reading a store never pays for diffusers, and ``import workbench`` stays cheap.
Below every layer: it imports nothing of the workbench."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy(package: str, namespace: dict, exports: dict[str, tuple[str, str | None]]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package`` whose ``exports`` map a public name to (module,
    attribute; None for the module itself), a module relative to the package when it starts with '.'.
    A loaded name is kept in ``namespace`` (the package's globals), so later lookups skip this."""

    def getattr_(name: str):
        try:
            module, attr = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        mod = importlib.import_module(module, package)
        value = mod if attr is None else getattr(mod, attr)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return getattr_, dir_
