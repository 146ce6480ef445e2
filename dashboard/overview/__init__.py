"""The Overview page: the team's running sandboxes, start rate and totals (`page`), and the
numbers and charts behind it (`data`)."""
