"""Threads: writers serialize without doubling rows; readers never wait for a writer."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from storage import MonitorStore
from tests.storage.rowmaker import at, samples_every_5s


def test_concurrent_overlapping_writers_store_each_sample_once(store: MonitorStore) -> None:
    batches = [
        samples_every_5s(f"sb-{i % 3}", 60 * (i // 3), 60 * (i // 3) + 120) for i in range(30)
    ]

    def write_all(seed: int) -> int:
        order = list(range(len(batches)))
        random.Random(seed).shuffle(order)
        return sum(store.add_samples(batches[i]) for i in order)

    with ThreadPoolExecutor(max_workers=4) as pool:
        written = sum(pool.map(write_all, range(4)))

    with store._reading() as cur:
        stored, distinct = cur.execute(
            "SELECT count(*), count(DISTINCT (sandbox_id, ts)) FROM samples"
        ).fetchone() or (0, 0)
    assert written == stored == distinct == 3 * 660 // 5  # 3 sandboxes, 0 to 660 s


def test_a_read_during_an_open_write_sees_the_last_commit_without_waiting(
    store: MonitorStore,
) -> None:
    store.add_samples(samples_every_5s("a", 0, 10))
    with ThreadPoolExecutor(max_workers=1) as pool, store._writing("a long write") as con:
        con.execute("DELETE FROM samples")
        # The writer lock is held and the delete is not committed: a reader in another
        # thread answers at once, from the committed state.
        seen = pool.submit(store.last_sample_at, ["a"]).result(timeout=10)
        assert list(seen) == ["a"]
        series = pool.submit(store.sandbox_series, "a", at(0), at(10), 10).result(timeout=10)
        assert len(series) == 2
    assert store.last_sample_at(["a"]) == {}
