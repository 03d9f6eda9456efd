"""The exceptions modscope raises for bad input, in one place.

Each is a ``ModscopeError`` and also the builtin a caller would expect, so
``except LookupError`` works too. The message is bound when the error is made
and names the problem and the fix in one line; the CLI prints it and exits 2.
"""

from __future__ import annotations


class ModscopeError(Exception):
    """Base class: bad input that the user can fix."""


class ModelNotFoundError(ModscopeError, LookupError):
    """The source is neither a local path, a cached model, a catalog entry nor reachable on the Hub."""


class ConfigError(ModscopeError, ValueError):
    """A config.json that is missing, malformed, or names an unknown model type."""


class RemoteCodeError(ModscopeError, PermissionError):
    """The model needs its own modeling code, which modscope runs only with --trust-remote-code."""


class BuildError(ModscopeError, RuntimeError):
    """transformers could not build the model from its config."""


class OptionError(ModscopeError, ValueError):
    """An option that makes no sense: r <= 0, an unknown preset or task, an empty target list, a bad regex."""


class MissingExtraError(ModscopeError, ImportError):
    """An optional part of modscope whose library is not installed (the block diagram needs matplotlib)."""


def first_line(exc: BaseException | Warning | str) -> str:
    """The first line of an exception's message (its class name when it has none), for one-line reports."""
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(" :") if text else type(exc).__name__


def typed_line(exc: BaseException) -> str:
    """``Type: first line`` of an exception that is not modscope's own (whose message says it all)."""
    line = first_line(exc)
    return line if line == type(exc).__name__ else f"{type(exc).__name__}: {line}"
