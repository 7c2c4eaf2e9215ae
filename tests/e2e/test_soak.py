"""The fault soak of issue 7 at a thirtieth of its size: ~300 records through flows, one SIGKILL, the same faults."""

from __future__ import annotations

from benchmarks.soak import soak


def test_short_soak_loses_and_doubles_nothing():
    result = soak(records=300, kills=1, deadline_minutes=8)
    print(result)
    assert result.total("duplicated") == 0, {n: c for n, c in result.flows.items() if c.duplicated}
    assert result.total("lost") == 0, {n: c.lost_ids for n, c in result.flows.items() if c.lost}
    assert result.invalid_not_parked == []  # every seeded invalid record is in the DLQ with its reason
    assert all(": " in reason for reason in result.dlq_reasons)
    assert len(result.kills) == 1 and result.retries > 0
    assert result.total("arrived") + result.total("dlq") == result.total("sent")
