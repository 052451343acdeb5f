"""Exceptions and warnings raised by promolift.

Every error subclasses a built-in so that callers who catch ``ValueError`` keep working,
and every message says what is wrong, where, and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PromoliftError(Exception):
    """Base class of every promolift error."""


class ConfigError(PromoliftError, ValueError):
    """The campaign config is malformed; the message lists every problem at once."""


class DataError(PromoliftError, ValueError):
    """Input data does not match the campaign config (names the file, row/column and fix)."""


class BundleError(PromoliftError, ValueError):
    """A model bundle is missing, corrupt or incompatible with this promolift."""


class NotFittedError(PromoliftError, ValueError, AttributeError):
    """An estimator was used before ``fit``."""


class PromoliftWarning(UserWarning):
    """Base class of promolift warnings."""


class BundleVersionWarning(PromoliftWarning):
    """A bundle was written by a different promolift or library version."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""`` if none is close."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    if not match:
        match = [c for c in choices if c.lower() == name.lower()]
    return f" Did you mean '{match[0]}'?" if match else ""
