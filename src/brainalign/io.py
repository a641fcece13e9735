"""Small I/O helpers shared by every step (BIDS-style TSV and JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

__all__ = ["read_tsv", "write_tsv", "write_json", "ENTITY_COLUMNS"]

#: Columns that hold BIDS entity labels: always read as strings ("01" must not become 1).
ENTITY_COLUMNS = ("subject", "session", "task", "run", "participant_id")


def read_tsv(path: str | Path) -> pd.DataFrame:
    """Read a BIDS TSV: only ``n/a`` means missing, entity columns stay strings.

    An ROI called "null" stays a string, and subject "01" does not become 1.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    table : pandas.DataFrame
    """
    return pd.read_csv(
        path,
        sep="\t",
        keep_default_na=False,
        na_values=["n/a"],
        dtype={c: str for c in ENTITY_COLUMNS},
    )


def write_tsv(table: pd.DataFrame, path: str | Path) -> None:
    """Write a BIDS TSV (tab-separated, ``n/a`` for missing values, no index).

    Parameters
    ----------
    table : pandas.DataFrame
    path : str or Path
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")


def write_json(path: str | Path, obj: dict) -> None:
    """Write indented JSON with a trailing newline.

    Parameters
    ----------
    path : str or Path
    obj : dict
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2) + "\n")
