"""The Sandboxes page: every sandbox against its limits, the hottest first (`page`); the triage
rules (`triage`) and how the table is shown (`table`)."""
