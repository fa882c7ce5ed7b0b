"""The log of planted faults (truth/faults.parquet): what was planted where, and what must happen to it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

FAULT_COLUMNS: dict[str, pa.DataType] = {
    "kind": pa.string(),  # e.g. short_gap, spike, bad_enum, reissued_export, truncated_gzip
    "dataset": pa.string(),
    "file": pa.string(),  # path relative to landing/; NULL when nothing was delivered (a gap)
    "line": pa.int64(),  # physical line (header = 1) of the first affected row, NULL for gaps and whole files
    "meter_id": pa.string(),
    "key": pa.string(),  # bill_id, payment_id or export_id where that identifies the fault
    "interval_start": pa.string(),  # local time of the first affected interval
    "n_intervals": pa.int64(),
    "expected": pa.string(),  # what the pipeline must do: quarantine, reject_file, interpolate, like_day, ...
    "recoverable": pa.bool_(),  # whether the figures can still come out exact
}


@dataclass
class FaultLog:
    columns: dict[str, list] = field(default_factory=lambda: {name: [] for name in FAULT_COLUMNS})

    def add(self, kind: str, dataset: str, expected: str, recoverable: bool = True, **values: object) -> None:
        """One fault; missing columns are NULL."""
        row = {"kind": kind, "dataset": dataset, "expected": expected, "recoverable": recoverable, **values}
        unknown = set(row) - set(FAULT_COLUMNS)
        if unknown:
            raise KeyError(f"unknown fault columns {sorted(unknown)}")
        for name in FAULT_COLUMNS:
            value = row.get(name)
            self.columns[name].append(value.item() if isinstance(value, np.generic) else value)

    def add_many(
        self, kind: str, dataset: str, expected: str, **arrays: np.ndarray | list | str | None
    ) -> None:
        """Many faults of one kind at once: array columns, scalars repeated."""
        n = max((len(v) for v in arrays.values() if isinstance(v, (list, np.ndarray))), default=0)
        for name in FAULT_COLUMNS:
            value = {
                "kind": kind,
                "dataset": dataset,
                "expected": expected,
                "recoverable": True,
                **arrays,
            }.get(name)
            if isinstance(value, np.ndarray):
                self.columns[name].extend(value.tolist())
            elif isinstance(value, list):
                self.columns[name].extend(value)
            else:
                self.columns[name].extend([value] * n)

    def table(self) -> pa.Table:
        return pa.table(
            {
                name: pa.array(values, type_)
                for (name, type_), values in zip(FAULT_COLUMNS.items(), self.columns.values(), strict=True)
            }
        )
