"""Where the recorded E2B OpenAPI specs are, and the mark that skips a test without them.

The specs are E2B's, not this project's, so the repository does not carry them: CI keeps a
recorded copy in `../shared/reference/`, beside the checkout. A plain clone has no such folder,
and the tests that read the specs then skip, saying so (docs/E2B-API.md, "The specs in tests").
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPOSITORY.parent / "shared" / "reference"
API_SPEC = REFERENCE_DIR / "e2b-api-openapi.yml"
EVENTS_SPEC = REFERENCE_DIR / "e2b-events-webhooks-openapi.yml"
ENVD_SPEC = REFERENCE_DIR / "envd-openapi.yml"

SKIP_REASON = (
    f"E2B's recorded OpenAPI specs are not part of the repository and {REFERENCE_DIR} is "
    "absent (CI keeps them in ../shared/reference beside the checkout; "
    'docs/E2B-API.md, "The specs in tests")'
)

needs_reference_specs = pytest.mark.skipif(not REFERENCE_DIR.is_dir(), reason=SKIP_REASON)
