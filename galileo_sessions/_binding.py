"""Binding call arguments to parameter names, planned once per decorated function.

``inspect.signature`` and ``Signature.bind`` cost several microseconds; doing them per call
would dominate the decorator's overhead. ``ArgumentBinder`` reads the signature once and then
maps a call's ``args``/``kwargs`` with a ``zip`` and a few dict operations. ``self`` and
``cls`` are dropped, as the Galileo SDK does, so inputs hold only what the caller passed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["ArgumentBinder"]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class ArgumentBinder:
    """``binder(args, kwargs) -> {name: value}`` for one function, defaults filled in."""

    __slots__ = ("defaults", "drop_first", "names", "varargs")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.names: tuple[str, ...] = ()
        self.varargs: str | None = None
        self.defaults: tuple[tuple[str, Any], ...] = ()
        self.drop_first = False
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            self.varargs = "args"
            return
        names: list[str] = []
        defaults: list[tuple[str, Any]] = []
        for param in signature.parameters.values():
            if param.kind in _POSITIONAL:
                names.append(param.name)
            elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                self.varargs = param.name
            if param.default is not inspect.Parameter.empty and \
                    param.kind is not inspect.Parameter.VAR_KEYWORD:
                defaults.append((param.name, param.default))
        if names and names[0] in ("self", "cls"):
            self.drop_first = True
            defaults = [(n, d) for n, d in defaults if n != names[0]]
            names = names[1:]
        self.names = tuple(names)
        self.defaults = tuple(defaults)

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.drop_first and args:
            args = args[1:]
        bound = dict(zip(self.names, args, strict=False))  # extra args go to *varargs
        if len(args) > len(self.names) and self.varargs is not None:
            bound[self.varargs] = list(args[len(self.names):])
        if kwargs:
            bound.update(kwargs)
        for name, default in self.defaults:
            if name not in bound:
                bound[name] = default
        return bound
