"""The store's read side, one module per kind of question. `MonitorStore` has them all.

- `fleet`: the sandboxes now: the list, one sandbox's record, the live ids, the triage
  table (latest sample, trends, peaks), the team's latest peaks.
- `series`: gauges over time: one sandbox's series, team usage and activity, each
  sandbox's newest sample time.
- `incidents`: OOM incidents, and the sandbox log lines kept around them.
- `events`: lifecycle events and the audit of dashboard actions.
- `templates`: the team's template catalog as last listed.
- `template_fit`: how each template (or metadata value) fits its sandboxes, and its usage.
- `freshness`: the collectors' own records: how fresh each job's data is, its latest run,
  the documents they saved.

Every read runs on its own cursor, so any thread may ask while collectors write. Frames
have `datetime64[us, UTC]` time columns, sizes in bytes and CPU in percent of the
sandbox's vCPUs (0-100); column names are those of the tables (`storage.tables`).
"""
