"""Budget pacing: count the expected spend committed per campaign and never exceed the budget.

The decision service commits the expected cost of every promotion it hands out. A commit is
atomic, also across threads and processes: each amount is accepted, in order, only if the
campaign's committed total stays within the budget, so concurrent requests racing for the last
dollars can never push the total above it.

Two stores implement :class:`BudgetStore`:

``sqlite:///path/to/budget.db`` (default ``./promolift-budget.db``)
    :class:`SQLiteBudgetStore`, embedded, nothing to run. One ``BEGIN IMMEDIATE`` transaction
    per commit (WAL mode, busy timeout), so several worker processes can share the file. Every
    committed amount is also appended to a ledger table for audits
    (:meth:`~SQLiteBudgetStore.ledger`).
``redis://host:port/db`` (``rediss://`` for TLS, ``unix:///path/redis.sock``)
    :class:`RedisBudgetStore`, for services on several machines. A Lua script checks and
    increments the counter atomically on the server.

Money is counted in integer micro-dollars, so totals do not drift. Each amount is rounded *up*
to a whole micro-dollar and the budget *down*, so rounding can never let the true total exceed
the budget. Differences below the resolution of a float (``0.1`` is not exactly 1/10) are not
rounded up, so ``0.1`` counts as 100,000 micro-dollars.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit, urlunsplit

import numpy as np

from promolift.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_BUDGET_URL",
    "BudgetStore",
    "BudgetStoreUnavailableError",
    "RedisBudgetStore",
    "SQLiteBudgetStore",
    "open_budget_store",
]

DEFAULT_BUDGET_URL = "sqlite:///promolift-budget.db"
"""Store used when no URL is given: ``promolift-budget.db`` in the working directory."""

MICROS_PER_DOLLAR = 1_000_000
# Redis runs Lua with double-precision numbers: integers are exact up to 2**53 micro-dollars.
MAX_MICROS = 2**53
MAX_DOLLARS = MAX_MICROS / MICROS_PER_DOLLAR  # about 9.0e9 dollars
_CHUNK = 512  # 512 amounts of at most 2**53 sum to at most 2**62: int64 cumsum cannot overflow
_ACCEPTED_SCHEMES = (
    "sqlite:///path/to/budget.db (default ./promolift-budget.db), "
    "redis://host:port/db (rediss:// for TLS, unix:///path/redis.sock)"
)


class BudgetStoreUnavailableError(ConfigError):
    """The budget store cannot be opened or reached (names the URL and the fix)."""


@runtime_checkable
class BudgetStore(Protocol):
    """What the decision service needs from a budget counter."""

    def commit(self, campaign: str, amounts: Sequence[float], budget: float) -> list[bool]:
        """Atomically commit, in order, each amount whose addition keeps the campaign's committed
        total <= budget; return which were committed (all-or-nothing per amount, never above)."""
        ...

    def spent(self, campaign: str) -> float:
        """Dollars committed so far for ``campaign`` (0.0 for a campaign never seen)."""
        ...

    def close(self) -> None:
        """Release connections; the store cannot be used afterwards."""
        ...


# --------------------------------------------------------------------------- money and checks


def _amounts_to_micros(amounts: Sequence[float]) -> np.ndarray:
    """Dollar amounts -> int64 micro-dollars, each rounded up (float noise aside)."""
    try:
        a = np.asarray(amounts, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"budget amounts must be numbers (dollars); got {amounts!r}: {exc}"
        ) from exc
    if a.ndim != 1:
        raise DataError(
            f"budget amounts must be a flat sequence of dollars, got an array of shape {a.shape}; "
            "pass e.g. [1.25] for a single amount."
        )
    bad = ~(a >= 0) | ~np.isfinite(a)  # NaN fails both comparisons
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"budget amounts[{i}] = {float(a[i])!r}: amounts must be finite and >= 0 dollars "
            f"({int(bad.sum())} bad of {a.size}); check the expected costs passed to commit()."
        )
    big = a > MAX_DOLLARS
    if big.any():
        i = int(np.flatnonzero(big)[0])
        raise DataError(
            f"budget amounts[{i}] = {float(a[i])!r} exceeds the largest countable amount "
            f"({MAX_DOLLARS:.0f} dollars); amounts are in dollars, not cents or micro-dollars."
        )
    x = a * MICROS_PER_DOLLAR
    # A float is within a few ulps of the decimal it stands for: such noise is not rounded up.
    whole = np.rint(x)
    return np.where(np.abs(x - whole) <= 4 * np.spacing(x), whole, np.ceil(x)).astype(np.int64)


def _budget_to_micros(budget: float) -> int:
    """Budget dollars -> int micro-dollars, rounded down; budgets <= 0 give 0."""
    try:
        b = float(budget)
    except (TypeError, ValueError) as exc:
        raise DataError(f"budget must be a number of dollars, got {budget!r}") from exc
    if not math.isfinite(b):
        raise DataError(f"budget must be a finite number of dollars, got {b!r}")
    if b > MAX_DOLLARS:
        raise DataError(
            f"budget {b!r} exceeds the largest countable budget ({MAX_DOLLARS:.0f} dollars); "
            "budgets are in dollars, not cents or micro-dollars."
        )
    if b <= 0:
        return 0
    x = b * MICROS_PER_DOLLAR
    whole = round(x)
    return int(whole) if abs(x - whole) <= 4 * math.ulp(x) else math.floor(x)


def _check_campaign(campaign: str) -> str:
    if not isinstance(campaign, str) or not campaign or len(campaign) > 256 or "\x00" in campaign:
        raise DataError(
            f"campaign must be a non-empty string of at most 256 characters without NUL, "
            f"got {campaign!r}; it names the budget counter (e.g. 'spring-sale')."
        )
    return campaign


def _fit_in_order(micros: np.ndarray, remaining: int) -> tuple[np.ndarray, int]:
    """Greedy in-order fit: accept each amount that still fits; vectorised by runs.

    Each pass accepts the longest prefix of the still-fitting amounts whose running sum fits, so
    the number of passes is the number of times the greedy rule skips an amount that would fit
    later -- usually one or two.

    Returns the accepted mask and the remaining micro-dollars.
    """
    accepted = np.zeros(micros.size, dtype=bool)
    pending = np.flatnonzero(micros <= remaining)
    while pending.size:
        chunk = pending[:_CHUNK]
        running = np.cumsum(micros[chunk])
        k = int(np.searchsorted(running, remaining, side="right"))  # >= 1: chunk[0] fits
        accepted[chunk[:k]] = True
        remaining -= int(running[k - 1])
        rest = pending[k:]
        pending = rest[micros[rest] <= remaining]
    return accepted, remaining


def _redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for messages and logs)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparsable URL>"


class _StoreBase:
    """Shared helpers: ``remaining``, context manager."""

    def spent_micros(self, campaign: str) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def spent(self, campaign: str) -> float:
        """Dollars committed so far for ``campaign`` (0.0 for a campaign never seen)."""
        return self.spent_micros(campaign) / MICROS_PER_DOLLAR

    def remaining(self, campaign: str, budget: float) -> float:
        """Dollars of ``budget`` not yet committed for ``campaign`` (never negative)."""
        return max(_budget_to_micros(budget) - self.spent_micros(campaign), 0) / MICROS_PER_DOLLAR

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> _StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- SQLite

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS promolift_budget ("
    " campaign TEXT PRIMARY KEY,"
    " spent_micros INTEGER NOT NULL CHECK (spent_micros >= 0)"
    ") WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS promolift_budget_ledger ("
    " id INTEGER PRIMARY KEY,"
    " campaign TEXT NOT NULL,"
    " amount_micros INTEGER NOT NULL CHECK (amount_micros > 0),"
    " committed_at REAL NOT NULL"
    ")",
)
_SCHEMA_VERSION = 1
_SELECT = "SELECT spent_micros FROM promolift_budget WHERE campaign = ?"
_UPSERT = (
    "INSERT INTO promolift_budget (campaign, spent_micros) VALUES (?, ?) "
    "ON CONFLICT (campaign) DO UPDATE SET spent_micros = spent_micros + excluded.spent_micros"
)
_LEDGER = (
    "INSERT INTO promolift_budget_ledger (campaign, amount_micros, committed_at) VALUES (?, ?, ?)"
)


class SQLiteBudgetStore(_StoreBase):
    """Budget counter in a SQLite file, safe across threads and processes.

    Each process holds one connection, shared by its threads under a lock: with 16 threads this
    measured twice the commits/s of one connection per thread, with a shorter p99 tail (a lock
    hands over at once, SQLite's busy handler sleeps). Processes serialise on the database write lock (``BEGIN IMMEDIATE``), waiting up to
    ``timeout`` seconds. A store used in a forked child opens its own connection.

    Parameters
    ----------
    path : str or Path
        Database file; created if missing (its directory must exist).
    timeout : float, default=30.0
        Seconds to wait for another process's commit before giving up.
    durable : bool, default=False
        ``False``: ``synchronous=NORMAL``; a crash of the process loses nothing, but a power loss
        or OS crash may forget the last commits, which could then be spent again. ``True``
        (URL ``?durable=1``): fsync every commit (``synchronous=FULL``), so nothing committed is
        ever forgotten, at tens of times the commit latency (median 4-8 ms instead of 0.2 ms on
        a shared 2-core VM; ``benchmarks/bench_budget.py``).

    Raises
    ------
    ConfigError
        (:class:`BudgetStoreUnavailableError`) if the directory is missing or the file is not a
        promolift budget database.
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0, durable: bool = False) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.durable = durable
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._orphans: list[sqlite3.Connection] = []
        self._conn: sqlite3.Connection | None = None
        if not self.path.parent.is_dir():
            raise BudgetStoreUnavailableError(
                f"budget store {self.url}: directory {self.path.parent} does not exist; "
                "create it or pass another path."
            )
        self._conn = self._connect()

    @property
    def url(self) -> str:
        """``sqlite:///`` URL of this store."""
        return f"sqlite:///{self.path}" + ("?durable=1" if self.durable else "")

    def __repr__(self) -> str:
        return f"SQLiteBudgetStore({str(self.path)!r})"

    def _unavailable(self, exc: BaseException, doing: str) -> BudgetStoreUnavailableError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            fix = (f"another process held the write lock for more than {self.timeout:g} s; "
                   "raise timeout= or look for a process stuck in a transaction.")
        else:
            fix = ("check that the file is a promolift budget database and is writable, "
                   "or point the service at a new file.")
        return BudgetStoreUnavailableError(
            f"budget store {self.url}: {doing} failed ({exc}); {fix}"
        )

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "opening") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise BudgetStoreUnavailableError(
                    f"budget store {self.url} has schema version {version}, newer than this "
                    f"promolift understands ({_SCHEMA_VERSION}); upgrade promolift."
                )
            if version < _SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.close()
            raise self._unavailable(exc, "opening") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """The process's connection, held under the lock."""
        with self._lock:
            if self._pid != os.getpid():  # forked: never touch the parent's connection
                if self._conn is not None:
                    self._orphans.append(self._conn)
                self._pid = os.getpid()
                self._conn = self._connect()
            if self._conn is None:
                raise BudgetStoreUnavailableError(
                    f"budget store {self.url} is closed; open a new one with open_budget_store()."
                )
            yield self._conn

    def commit(self, campaign: str, amounts: Sequence[float], budget: float) -> list[bool]:
        """Commit, in order, each amount that keeps the committed total within ``budget``.

        Parameters
        ----------
        campaign : str
            Name of the budget counter.
        amounts : sequence of float
            Dollars, each >= 0. Zero amounts are always committed.
        budget : float
            The campaign's budget in dollars; <= 0 commits no positive amount.

        Returns
        -------
        list of bool
            Whether each amount was committed.

        Raises
        ------
        DataError
            Negative, NaN or infinite amounts, a non-finite budget, an empty campaign name.
        ConfigError
            (:class:`BudgetStoreUnavailableError`) if the database cannot be written.
        """
        campaign = _check_campaign(campaign)
        micros = _amounts_to_micros(amounts)
        budget_micros = _budget_to_micros(budget)
        if not micros.any():  # empty, or only zeros: nothing to count
            return [True] * micros.size
        with self._connection() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute(_SELECT, (campaign,)).fetchone()
                    spent = row[0] if row else 0
                    accepted, _ = _fit_in_order(micros, max(budget_micros - spent, 0))
                    taken = micros[accepted]
                    total = int(taken.sum())
                    if total:
                        conn.execute(_UPSERT, (campaign, total))
                        now = time.time()
                        conn.executemany(_LEDGER, zip(itertools.repeat(campaign),
                                                      taken[taken > 0].tolist(),
                                                      itertools.repeat(now)))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._unavailable(exc, f"committing to campaign {campaign!r}") from exc
        return accepted.tolist()

    def spent_micros(self, campaign: str) -> int:
        """Micro-dollars committed so far for ``campaign``."""
        campaign = _check_campaign(campaign)
        with self._connection() as conn:
            try:
                row = conn.execute(_SELECT, (campaign,)).fetchone()
            except sqlite3.Error as exc:
                raise self._unavailable(exc, "reading") from exc
        return int(row[0]) if row else 0

    def ledger(self, campaign: str | None = None) -> pd.DataFrame:
        """Every committed amount, oldest first: ``campaign, amount, committed_at`` (UTC).

        Its per-campaign sums equal :meth:`spent`; use it to audit or reconcile spend.
        """
        import pandas as pd

        query = "SELECT campaign, amount_micros, committed_at FROM promolift_budget_ledger"
        params: tuple[Any, ...] = ()
        if campaign is not None:
            query += " WHERE campaign = ?"
            params = (_check_campaign(campaign),)
        with self._connection() as conn:
            try:
                rows = conn.execute(query + " ORDER BY id", params).fetchall()
            except sqlite3.Error as exc:
                raise self._unavailable(exc, "reading the ledger") from exc
        frame = pd.DataFrame(rows, columns=["campaign", "amount_micros", "committed_at"])
        return pd.DataFrame({
            "campaign": frame["campaign"].astype(str),
            "amount": frame["amount_micros"].to_numpy(np.int64) / MICROS_PER_DOLLAR,
            "committed_at": pd.to_datetime(frame["committed_at"].astype(float), unit="s",
                                           utc=True),
        })

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


# --------------------------------------------------------------------------- Redis

# KEYS[1] = counter; ARGV[1] = budget micros; ARGV[2..] = amounts in micros.
# Lua numbers are doubles: exact for the integers used here (all <= 2**53; see MAX_MICROS).
_LUA_COMMIT = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent == nil then
  return redis.error_reply('promolift budget counter ' .. KEYS[1] .. ' is not an integer')
end
local remaining = tonumber(ARGV[1]) - spent
if remaining < 0 then remaining = 0 end
local out = {}
local total = 0
for i = 2, #ARGV do
  local a = tonumber(ARGV[i])
  if a <= remaining then
    remaining = remaining - a
    total = total + a
    out[i - 1] = 1
  else
    out[i - 1] = 0
  end
end
if total > 0 then
  redis.call('INCRBY', KEYS[1], string.format('%.0f', total))
end
return out
"""


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - redis is installed where this is tested
        raise ConfigError(
            "a redis:// budget store needs the redis client: pip install 'promolift[serve]' "
            "(or pip install redis), or use a sqlite:/// store."
        ) from exc
    return redis


class RedisBudgetStore(_StoreBase):
    """Budget counter in Redis, for services running on several machines.

    One key per campaign (``prefix + campaign``) holds the committed micro-dollars; a Lua script
    (run with EVALSHA) checks and increments it atomically. Commits are as durable as the Redis
    server's persistence (AOF with ``appendfsync always`` for none lost).

    Parameters
    ----------
    url : str
        ``redis://[user:password@]host:port/db``, ``rediss://...`` or ``unix:///path.sock``.
    prefix : str, default="promolift:budget:"
        Key prefix.
    timeout : float, default=5.0
        Socket connect/read timeout in seconds.
    max_connections : int, default=64
        Connection pool size per process.

    Raises
    ------
    ConfigError
        (:class:`BudgetStoreUnavailableError`) if the server cannot be reached.

    Notes
    -----
    The client retries a command after a dropped connection. If a commit reached the server but
    its reply was lost, the retry counts it again: spend is then over-counted (the budget is
    under-used), never exceeded.
    """

    def __init__(self, url: str, *, prefix: str = "promolift:budget:", timeout: float = 5.0,
                 max_connections: int = 64) -> None:
        redis = _import_redis()
        self.url = url
        self.prefix = prefix
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                        redis.exceptions.ResponseError)
        try:
            self._client = redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout,
                max_connections=max_connections, decode_responses=False,
            )
        except ValueError as exc:
            raise BudgetStoreUnavailableError(
                f"budget store URL {_redact(url)!r} is not a valid Redis URL ({exc}); "
                "use redis://host:port/db."
            ) from exc
        self._script = self._client.register_script(_LUA_COMMIT)
        self._closed = False
        self._call(self._client.ping, "connecting")

    def __repr__(self) -> str:
        return f"RedisBudgetStore({_redact(self.url)!r})"

    def _call(self, fn: Any, doing: str, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise BudgetStoreUnavailableError(
                f"budget store {_redact(self.url)} is closed; open a new one with "
                "open_budget_store()."
            )
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            raise BudgetStoreUnavailableError(
                f"budget store {_redact(self.url)}: {doing} failed ({type(exc).__name__}: {exc}); "
                "check that redis-server is running and reachable at that URL (redis-cli -u URL "
                "ping), or use the embedded store sqlite:///promolift-budget.db."
            ) from exc

    def commit(self, campaign: str, amounts: Sequence[float], budget: float) -> list[bool]:
        """Commit, in order, each amount that keeps the committed total within ``budget``.

        Same contract as :meth:`SQLiteBudgetStore.commit`.
        """
        campaign = _check_campaign(campaign)
        micros = _amounts_to_micros(amounts)
        budget_micros = _budget_to_micros(budget)
        if not micros.any():
            return [True] * micros.size
        flags = self._call(self._script, f"committing to campaign {campaign!r}",
                           keys=[self.prefix + campaign], args=[budget_micros, *micros.tolist()])
        return [bool(f) for f in flags]

    def spent_micros(self, campaign: str) -> int:
        """Micro-dollars committed so far for ``campaign``."""
        value = self._call(self._client.get, "reading", self.prefix + _check_campaign(campaign))
        return int(value) if value is not None else 0

    def close(self) -> None:
        """Disconnect the pool (idempotent)."""
        if not self._closed:
            self._closed = True
            self._client.close()
            self._client.connection_pool.disconnect()


# --------------------------------------------------------------------------- factory


def open_budget_store(url: str | None = None) -> BudgetStore:
    """Open the budget store named by ``url``.

    Parameters
    ----------
    url : str, optional
        ``None`` -> :data:`DEFAULT_BUDGET_URL` (``promolift-budget.db`` in the working directory);
        ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` ->
        :class:`SQLiteBudgetStore` (add ``?durable=1`` to fsync every commit);
        ``redis://host:port/db``, ``rediss://`` or ``unix://`` -> :class:`RedisBudgetStore`.

    Returns
    -------
    BudgetStore
        Also a context manager that closes the store.

    Raises
    ------
    ConfigError
        Unknown scheme, in-memory SQLite, or the store cannot be opened or reached.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with open_budget_store(f"sqlite:///{d}/budget.db") as store:
    ...         print(store.commit("spring", [3.0, 2.5, 1.0], budget=5.0), store.spent("spring"))
    [True, False, True] 4.0
    """
    if url is None:
        url = DEFAULT_BUDGET_URL
    if not isinstance(url, str):
        raise ConfigError(
            f"budget store URL must be a string, got {url!r}; use {_ACCEPTED_SCHEMES}"
        )
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        path = url[len("sqlite:///"):] if url.lower().startswith("sqlite:///") else ""
        path, _, query = path.partition("?")
        options = parse_qs(query, keep_blank_values=True)
        durable = options.pop("durable", ["0"])[-1].lower()
        if options or durable not in ("0", "1", "true", "false"):
            raise ConfigError(
                f"budget store URL {url!r}: the only SQLite option is ?durable=0 or ?durable=1 "
                "(fsync every commit)."
            )
        if not path or path == ":memory:":
            raise ConfigError(
                f"budget store URL {url!r} names no file; an in-memory database cannot be shared "
                "between threads and worker processes. Use sqlite:///path/to/budget.db "
                "(three slashes, then a relative path; four for an absolute one)."
            )
        return SQLiteBudgetStore(path, durable=durable in ("1", "true"))
    if scheme in ("redis", "rediss", "unix"):
        return RedisBudgetStore(url)
    hint = ""
    if not scheme and url.lower().endswith((".db", ".sqlite", ".sqlite3")):
        hint = f" Did you mean 'sqlite:///{url}'?"
    raise ConfigError(
        f"budget store URL {_redact(url)!r} has an unknown scheme; use {_ACCEPTED_SCHEMES}.{hint}"
    )
