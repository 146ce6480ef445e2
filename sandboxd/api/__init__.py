"""The control-plane HTTP API: E2B's routes, status codes and `{"code", "message"}` errors."""
