"""The Sandbox detail page: one sandbox's charts, logs and events (`page`, `data`) and the
verdict on how it ended (`verdict`)."""
