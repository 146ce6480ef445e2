"""sandscope's DuckDB store: schema and migrations, bulk writes, the dashboard's questions.

store = MonitorStore.open(path)      # one process per file; StoreInUseError otherwise
store.add_samples(rows)              # bulk, deduplicated, one transaction
store.sandbox_series(id, start, end, max_points=2000)
store.close()

Where things are: `tables` declares every table's columns once; `schema` holds the
migrations; `rows` the rows collectors write, `batches` and `writes` how they go in;
`reads/` the questions, one module per kind (fleet, series, incidents, events, freshness);
`maintenance` the rollups and retention.
"""

from storage.errors import StoreError, StoreInUseError, StoreTooNewError
from storage.reads.fleet import SandboxRecord
from storage.store import MonitorStore

__all__ = ["MonitorStore", "SandboxRecord", "StoreError", "StoreInUseError", "StoreTooNewError"]
