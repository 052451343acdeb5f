"""API keys with roles, stored hashed.

The key file is JSON::

    {"keys": [{"name": "shop-frontend", "roles": ["decide"], "sha256": "<hex>"},
              {"name": "ml-ops", "roles": ["admin", "decide"], "sha256": "<hex>"}]}

Keys are random 256-bit tokens made by :func:`new_key` (``promolift api-key NAME --role decide
--file keys.json`` appends an entry and prints the key once), so a plain SHA-256 of the key is
as safe to store as a slow password hash: nobody can brute-force 2^256 guesses, and the server
never stores the key itself. A presented key is hashed and compared with **every** stored hash
with :func:`hmac.compare_digest` (constant time, no early exit), so the timing does not reveal
which or how many bytes matched.

Roles: ``decide`` (``POST /v1/decisions``, ``GET /v1/models``) and ``admin`` (load / roll back
models). A missing or unknown key is a 401, a known key without the role a 403.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from promolift.errors import ConfigError
from promolift.io import atomic_write_json

__all__ = ["ROLES", "ApiKey", "KeyRing", "add_key", "hash_key", "new_key"]

ROLES = ("decide", "admin")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def hash_key(key: str) -> str:
    """SHA-256 hex digest of a key, as stored in the key file.

    Examples
    --------
    >>> hash_key("abc")[:16]
    'ba7816bf8f01cfea'
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A new random key (256 bits, URL-safe, prefixed ``pl_`` so scanners can spot leaks)."""
    return "pl_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ApiKey:
    name: str
    roles: frozenset[str]
    digest: bytes


class KeyRing:
    """The known keys; :meth:`identify` finds the entry of a presented key."""

    def __init__(self, keys: list[ApiKey]):
        self.keys = keys

    @classmethod
    def load(cls, path: str | Path) -> KeyRing:
        """Read and check a key file.

        Raises
        ------
        ConfigError
            Missing or malformed file, unknown role, bad hash, duplicate name (names the entry).
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: API key file not found. Create one with "
                              f"'promolift api-key NAME --role decide --file {path}'.")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc}).") from None
        entries = raw.get("keys") if isinstance(raw, dict) else None
        if not isinstance(entries, list):
            raise ConfigError(f'{path}: expected {{"keys": [{{"name", "roles", "sha256"}}, ...]}}.')
        keys, seen = [], set()
        for i, e in enumerate(entries):
            where = f"{path}: keys[{i}]"
            if not isinstance(e, dict) or set(e) - {"name", "roles", "sha256", "created"}:
                raise ConfigError(f"{where}: expected an object with name, roles, sha256 (and created).")
            name, roles, digest = e.get("name"), e.get("roles"), e.get("sha256")
            if not isinstance(name, str) or not name or name in seen:
                raise ConfigError(f"{where}: 'name' must be a unique non-empty string, got {name!r}.")
            if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
                raise ConfigError(f"{where} ({name}): 'roles' must be a non-empty list of "
                                  f"{', '.join(ROLES)}; got {roles!r}.")
            if not isinstance(digest, str) or not _HEX64.match(digest):
                raise ConfigError(f"{where} ({name}): 'sha256' must be 64 lowercase hex characters "
                                  "(the SHA-256 of the key, never the key itself).")
            seen.add(name)
            keys.append(ApiKey(name, frozenset(roles), bytes.fromhex(digest)))
        return cls(keys)

    def identify(self, presented: str | None) -> ApiKey | None:
        """The entry whose hash matches ``presented``, else None (constant time over the keys)."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for k in self.keys:  # no early exit: every hash is compared
            if hmac.compare_digest(k.digest, digest):
                found = k
        return found


def add_key(path: str | Path, name: str, roles: list[str]) -> str:
    """Append a new key to the key file (created if needed, written atomically); return the key.

    Raises
    ------
    ConfigError
        Unknown role, or the name is taken.
    """
    path = Path(path)
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise ConfigError(f"unknown role(s) {', '.join(bad) or '(none given)'}; choose from {', '.join(ROLES)}.")
    raw = json.loads(path.read_text()) if path.is_file() else {"keys": []}
    KeyRing.load(path) if path.is_file() else None  # validate before appending
    if any(e["name"] == name for e in raw["keys"]):
        raise ConfigError(f"{path}: a key named '{name}' exists; choose another name "
                          "(or delete its entry to revoke it).")
    key = new_key()
    from datetime import UTC, datetime

    raw["keys"].append({"name": name, "roles": sorted(set(roles)), "sha256": hash_key(key),
                        "created": datetime.now(UTC).isoformat(timespec="seconds")})
    atomic_write_json(path, raw)
    return key
