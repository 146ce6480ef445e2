"""Issue 9, reduced isolation without root and without bwrap ("plain" boxes).

There box code would run as sandboxd's own user, outside any namespace: it could read the
API key in sandboxd's data dir and then drive every other box through the API. sandboxd
must refuse to start so unless the operator says, with SANDBOXD_ALLOW_SHARED_USER, that
this is acceptable. The test plays a non-root sandboxd on a host where bwrap cannot make a
user namespace (as on hosts that restrict unprivileged namespaces).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandboxd.isolation import choose, reduced
from sandboxd.isolation.choose import choose_isolation
from sandboxd.isolation.reduced import ReducedIsolation, UnprivilegedBoxesUnavailable
from tests.sandboxd.isolation.helpers import TEST_UID_BASE

# Reduced boxes make no cgroups: the parent is named, never created.
NO_CGROUPS = "sbx-never-made"


@pytest.fixture
def unprivileged_without_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sandboxd.isolation.choose.os.geteuid", lambda: 1000)
    monkeypatch.setattr(reduced, "capability_blocker", lambda: None)
    monkeypatch.setattr(
        choose, "bwrap_works", lambda prefix=(): (False, "bwrap: no permission to make userns")
    )


@pytest.mark.usefixtures("unprivileged_without_bwrap")
def test_plain_boxes_as_sandboxds_own_user_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnprivilegedBoxesUnavailable) as refused:
        choose_isolation(tmp_path, NO_CGROUPS, TEST_UID_BASE, force_reduced=True)

    message = str(refused.value)
    assert "could read its API key" in message
    assert "SANDBOXD_ALLOW_SHARED_USER=1" in message
    assert "no permission to make userns" in message  # the cause, for the operator


@pytest.mark.usefixtures("unprivileged_without_bwrap")
def test_the_operator_may_accept_them(tmp_path: Path) -> None:
    iso = choose_isolation(
        tmp_path, NO_CGROUPS, TEST_UID_BASE, force_reduced=True, allow_shared_user=True
    )

    assert isinstance(iso, ReducedIsolation) and not iso.use_bwrap
    assert any("same uid" in line for line in iso.limitations)
    iso.close()
