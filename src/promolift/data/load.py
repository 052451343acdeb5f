"""Read a campaign log (CSV or Parquet) and validate it against the campaign config.

Every error names the file, the column or rows, and the fix. Nothing here writes files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from promolift.config import CampaignConfig, JoinSection
from promolift.errors import DataError, did_you_mean

__all__ = ["CampaignData", "read_table", "join_columns", "load_campaign", "load_customers", "MIN_ROWS_PER_ARM"]

MIN_ROWS_PER_ARM = 200
"""An arm with fewer rows than this cannot be learned from; validation refuses it."""


@dataclass(frozen=True, eq=False)
class CampaignData:
    """A validated experiment log.

    Attributes
    ----------
    X : DataFrame
        Raw feature columns (not yet encoded).
    treatment : ndarray of int, shape (n,)
        Arm code per row; 0 is the control, codes follow ``arms``.
    Y : ndarray of float, shape (n, M)
        Outcomes in ``outcomes`` order.
    ids : ndarray, shape (n,)
        Customer ids.
    arms, outcomes, outcome_types : tuple of str
    propensity : ndarray of shape (n, K) or None
        Known assignment probabilities, if the log has a propensity column.
    fingerprint : str
        SHA-256 of the source file (or of the frame when built in memory).
    source : str
        Where the data came from, for messages.
    """

    X: pd.DataFrame
    treatment: np.ndarray
    Y: np.ndarray
    ids: np.ndarray
    arms: tuple[str, ...]
    outcomes: tuple[str, ...]
    outcome_types: tuple[str, ...]
    propensity: np.ndarray | None = None
    fingerprint: str = ""
    source: str = "<frame>"
    id_name: str = "customer_id"

    @property
    def n_arms(self) -> int:
        return len(self.arms)

    def __len__(self) -> int:
        return len(self.treatment)

    def subset(self, rows: np.ndarray) -> CampaignData:
        """The same data restricted to ``rows`` (integer positions or boolean mask)."""
        rows = np.asarray(rows)
        return CampaignData(
            X=self.X.iloc[rows].reset_index(drop=True),
            treatment=self.treatment[rows],
            Y=self.Y[rows],
            ids=self.ids[rows],
            arms=self.arms,
            outcomes=self.outcomes,
            outcome_types=self.outcome_types,
            propensity=None if self.propensity is None else self.propensity[rows],
            fingerprint=self.fingerprint,
            source=self.source,
            id_name=self.id_name,
        )


def file_fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's contents and column names."""
    h = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def read_table(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV (optionally gzip-compressed) or Parquet file into a DataFrame.

    Raises
    ------
    DataError
        If the file is missing, empty, unreadable or of an unknown type.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found. Check the path (relative paths in campaign.toml "
                        "are relative to the config file).")
    suffixes = "".join(path.suffixes[-2:]).lower()
    try:
        if suffixes.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(path, columns=columns)
        elif suffixes.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
            sep = "\t" if ".tsv" in suffixes else ","
            frame = pd.read_csv(path, sep=sep, usecols=columns, low_memory=False)
        else:
            raise DataError(f"{path}: unknown file type '{suffixes}'. Use .csv, .csv.gz or .parquet.")
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty. It needs a header row and at least one data row.") from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: could not be read as {suffixes.lstrip('.')}: {exc}") from None
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no data rows.")
    return frame


def _require_columns(frame: pd.DataFrame, needed: list[str], source: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        hints = "".join(
            f"\n  - '{c}'{did_you_mean(c, map(str, frame.columns)) or ' (no similar column)'}"
            for c in sorted(missing)
        )
        raise DataError(
            f"{source}: {len(missing)} column(s) named in the campaign config are missing:{hints}\n"
            f"The file has: {', '.join(map(str, frame.columns))}. Rename the column or fix campaign.toml."
        )


def _rows(mask: np.ndarray, limit: int = 5) -> str:
    """'data rows 3, 17, 20 (and 4 more)': 1-based data rows, header not counted."""
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i + 1) for i in idx[:limit])
    more = f" (and {len(idx) - limit} more)" if len(idx) > limit else ""
    return f"data row{'s' if len(idx) > 1 else ''} {shown}{more}"


def feature_columns(frame: pd.DataFrame, config: CampaignConfig) -> list[str]:
    """The configured features, or every column that is not id/treatment/outcome/propensity."""
    d = config.data
    if d.features:
        return list(d.features)
    reserved = {d.id, d.treatment, *config.outcomes}
    if d.propensity:
        reserved.add(d.propensity)
    return [c for c in frame.columns if c not in reserved]


def join_columns(
    frame: pd.DataFrame, joins: list[JoinSection], *, id_column: str, source: str
) -> tuple[pd.DataFrame, list[str]]:
    """Left-join customer-level tables (``[[data.join]]``) on the customer id.

    Ids are matched as text, so ``12`` in the log finds ``"12"`` in a CLV table. Customers
    missing from a table get missing values (the models handle them as in training). Columns
    the frame already has are left as they are, so customers files that carry them win.

    Returns
    -------
    (DataFrame, list of str)
        The frame with the joined columns, and the names of all columns the joins provide.

    Raises
    ------
    DataError
        Missing file or column, duplicate keys in a joined table, or no id in common.
    """
    provided = []
    for spec in joins:
        table = read_table(spec.path)
        where = str(spec.path)
        _require_columns(table, [spec.on, *spec.columns], where)
        cols = spec.columns or [c for c in table.columns if c != spec.on]
        provided += cols
        cols = [c for c in cols if c not in frame.columns]
        if not cols:
            continue
        keys = table[spec.on].astype("string")
        dup = keys.duplicated(keep=False).to_numpy()
        if dup.any():
            raise DataError(f"{where}: column '{spec.on}' (data.join.on) repeats id {keys[dup].iloc[0]!r} at "
                            f"{_rows(dup)}. A joined table needs one row per customer.")
        right = table[cols].set_axis(pd.Index(keys, name=None))
        ids = frame[id_column].astype("string")
        hit = ids.isin(right.index).to_numpy()
        if not hit.any():
            raise DataError(
                f"{source}: no customer id in column '{id_column}' appears in {where} column '{spec.on}' "
                f"(e.g. {ids.iloc[0]!r} vs {keys.iloc[0]!r}). Check that both use the same ids.")
        added = right.reindex(ids.to_numpy())
        frame = frame.assign(**{c: added[c].to_numpy() for c in cols})
    return frame, provided


def _check_ids(ids: pd.Series, source: str) -> np.ndarray:
    if ids.isna().any():
        raise DataError(f"{source}: column '{ids.name}' has empty ids at {_rows(ids.isna().to_numpy())}. "
                        "Every row needs a customer id.")
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        example = ids[dup].tolist()[0]
        raise DataError(
            f"{source}: column '{ids.name}' has {int(ids.duplicated().sum())} duplicate id(s), e.g. "
            f"{example!r} at {_rows((ids == example).to_numpy())}. Keep one row per customer "
            "(deduplicate the log before training)."
        )
    return ids.to_numpy()


def load_campaign(
    source: str | Path | pd.DataFrame,
    config: CampaignConfig,
    *,
    min_rows_per_arm: int = MIN_ROWS_PER_ARM,
) -> CampaignData:
    """Load and validate an experiment log against ``config``.

    Parameters
    ----------
    source : path or DataFrame
        CSV / Parquet file, or a frame already in memory. ``None`` reads ``config.data.path``.
    config : CampaignConfig
    min_rows_per_arm : int, default=200
        Fewer rows than this in an arm is an error: nothing can be learned from it.

    Returns
    -------
    CampaignData

    Raises
    ------
    DataError
        Missing or misspelt columns (with the closest name), unknown or absent arms, control
        arm missing, non-numeric or missing outcomes, binary outcomes outside {0, 1}, empty
        file, duplicate ids, an arm with too few rows.
    """
    if source is None:
        if config.data.path is None:
            raise DataError("no data given: pass a file or set data.path in campaign.toml")
        source = config.data.path
    if isinstance(source, pd.DataFrame):
        frame, name, fingerprint = source, "<frame>", frame_fingerprint(source)
        if frame.empty:
            raise DataError("the data frame is empty")
    else:
        name = str(source)
        frame, fingerprint = read_table(source), file_fingerprint(Path(source))
    d = config.data
    if d.join:
        _require_columns(frame, [d.id], name)
        frame, joined = join_columns(frame, d.join, id_column=d.id, source=name)
    features = feature_columns(frame, config)
    if d.join and d.features:
        features += [c for c in joined if c not in features]
    needed = [d.id, d.treatment, *config.outcomes, *features]
    if d.propensity:
        needed.append(d.propensity)
    _require_columns(frame, needed, name)
    if not features:
        raise DataError(f"{name}: no feature columns left. List them in data.features.")

    arms = tuple(config.arm_names)
    labels = frame[d.treatment].astype("string")
    seen = set(labels.dropna().unique())
    unknown = sorted(seen - set(arms))
    if labels.isna().any():
        raise DataError(f"{name}: column '{d.treatment}' is empty at {_rows(labels.isna().to_numpy())}.")
    if unknown:
        first = unknown[0]
        raise DataError(
            f"{name}: column '{d.treatment}' has arm(s) not in campaign.toml: {', '.join(map(repr, unknown))} "
            f"(first at {_rows((labels == first).to_numpy(), 1)}).{did_you_mean(first, arms)} "
            f"Add an [arms.\"{first}\"] table, or drop those rows."
        )
    if d.control not in seen:
        raise DataError(
            f"{name}: control arm '{d.control}' (data.control) never appears in column '{d.treatment}'. "
            f"Arms present: {', '.join(sorted(seen))}. Uplift needs a control group."
        )
    absent = [a for a in arms if a not in seen]
    if absent:
        raise DataError(
            f"{name}: arm(s) {', '.join(map(repr, absent))} are in campaign.toml but have no rows in "
            f"column '{d.treatment}'. Remove their [arms] table or add their data."
        )
    codes = pd.Categorical(labels, categories=list(arms)).codes.astype(np.int8)
    counts = np.bincount(codes, minlength=len(arms))
    small = [(a, int(c)) for a, c in zip(arms, counts, strict=True) if c < min_rows_per_arm]
    if small:
        desc = ", ".join(f"'{a}' has {c}" for a, c in small)
        raise DataError(
            f"{name}: too few rows to learn from: {desc} (need at least {min_rows_per_arm} per arm). "
            "Collect more data for that arm or remove it from campaign.toml."
        )

    Y = np.empty((len(frame), len(config.outcomes)), dtype=np.float64)
    for j, (outcome, kind) in enumerate(config.outcomes.items()):
        raw = frame[outcome]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna().to_numpy() & raw.notna().to_numpy()
        if bad.any():
            example = raw[bad].iloc[0]
            raise DataError(f"{name}: outcome column '{outcome}' is not numeric: {example!r} at "
                            f"{_rows(bad)}. Outcomes must be numbers.")
        if values.isna().any():
            raise DataError(f"{name}: outcome column '{outcome}' is empty at {_rows(values.isna().to_numpy())}. "
                            "Fill in the outcome (0 if nothing happened) or drop those rows.")
        if kind == "binary":
            off = ~values.isin([0, 1]).to_numpy()
            if off.any():
                raise DataError(f"{name}: binary outcome '{outcome}' has values other than 0/1, e.g. "
                                f"{values[off].iloc[0]!r} at {_rows(off)}. Declare it \"continuous\" "
                                "in [outcomes] or recode it.")
        Y[:, j] = values.to_numpy(dtype=np.float64)

    propensity = None
    if d.propensity:
        p = pd.to_numeric(frame[d.propensity], errors="coerce").to_numpy(dtype=float)
        bad = ~((p > 0) & (p <= 1))
        if bad.any():
            raise DataError(f"{name}: propensity column '{d.propensity}' must be in (0, 1], "
                            f"not at {_rows(bad)}.")
        # Known probability of the arm actually received; other arms unknown -> randomized shares.
        shares = counts / counts.sum()
        propensity = np.tile(shares, (len(frame), 1))
        propensity[np.arange(len(frame)), codes] = p

    return CampaignData(
        X=frame[features].reset_index(drop=True),
        treatment=codes,
        Y=Y,
        ids=_check_ids(frame[d.id], name),
        arms=arms,
        outcomes=tuple(config.outcomes),
        outcome_types=tuple(config.outcomes.values()),
        propensity=propensity,
        fingerprint=fingerprint,
        source=name,
        id_name=d.id,
    )


def load_customers(
    source: str | Path | pd.DataFrame, *, id_column: str, features: list[str],
    join: list[JoinSection] | tuple[()] = (),
) -> tuple[np.ndarray, pd.DataFrame]:
    """Load customers to score: their ids and the feature columns a model was trained on.

    Extra columns (treatment, outcomes, anything else) are ignored. Feature columns missing
    from the file are joined from the ``join`` tables (the campaign's ``[[data.join]]``).
    """
    if isinstance(source, pd.DataFrame):
        frame, name = source, "<frame>"
    else:
        name = str(source)
        frame = read_table(source)
    if join and any(c not in frame.columns for c in features):
        _require_columns(frame, [id_column], name)
        frame, _ = join_columns(frame, list(join), id_column=id_column, source=name)
    _require_columns(frame, [id_column, *features], name)
    return _check_ids(frame[id_column], name), frame[features].reset_index(drop=True)
