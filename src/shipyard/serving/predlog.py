"""The prediction log: records buffered in memory, written to Parquet off the request path.

Records go into a bounded buffer (appending is a list append under a lock); a
background thread writes them every ``interval`` seconds, or sooner when a batch fills
(small, frequent batches: a flush holds the GIL, so a big one stalls every request),
to ``<root>/<kind>/model=<m>/date=<YYYY-MM-DD>/hour=<HH>/part-<n>.parquet``. Each file is
written to a temporary name and renamed, so readers never see half a file. ``close``
flushes what is left: a clean stop loses nothing. When the buffer is full (the disk
cannot keep up), new records are dropped and counted rather than growing memory.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["PredictionLog", "read_log"]


class PredictionLog:
    def __init__(
        self,
        root: Path,
        *,
        interval: float = 0.25,
        batch: int = 1000,
        capacity: int = 200_000,
    ) -> None:
        self.root = root
        self.interval = interval
        self.batch = batch
        self.capacity = capacity
        self.dropped = 0
        self.written = 0
        self._buffer: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, kind: str, record: dict[str, Any]) -> bool:
        """Queue one record ('predictions' or 'feedback'); False if it had to be dropped."""
        with self._lock:
            if len(self._buffer) >= self.capacity:
                self.dropped += 1
                return False
            self._buffer.append((kind, record))
            if len(self._buffer) >= self.batch:
                self._wake.set()
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        with self._lock:
            pending, self._buffer = self._buffer, []
        if not pending:
            return 0
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for kind, record in pending:
            at = datetime.fromtimestamp(record["ts"], UTC)
            groups[(kind, str(record.get("model", "_")), at.strftime("%Y-%m-%d/hour=%H"))].append(
                record
            )
        for (kind, model, when), records in groups.items():
            self._write(kind, model, when, records)
        self.written += len(pending)
        return len(pending)

    def _write(self, kind: str, model: str, when: str, records: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = self.root / kind / f"model={model}" / f"date={when}"
        folder.mkdir(parents=True, exist_ok=True)
        for record in records:  # nested values are stored as JSON text
            for key, value in record.items():
                if isinstance(value, dict | list):
                    record[key] = json.dumps(value)
        keys = list(dict.fromkeys(k for record in records for k in record))
        if len(keys) == len(records[0]):  # uniform records (the usual case): Arrow builds it
            table = pa.Table.from_pylist(records)
        else:  # e.g. two versions with different inputs in one hour: the union of columns
            table = pa.table({k: [record.get(k) for record in records] for k in keys})
        name = f"part-{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = folder / f".{name}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, folder / name)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.flush()


def read_log(root: Path, kind: str = "predictions", model: str | None = None) -> Any:
    """All records of one kind (optionally one model) as a pandas DataFrame."""
    import pandas as pd
    import pyarrow.parquet as pq

    base = root / kind
    if model:
        base = base / f"model={model}"
    files = sorted(p for p in base.rglob("*.parquet") if not p.name.startswith("."))
    if not files:
        return pd.DataFrame()
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
