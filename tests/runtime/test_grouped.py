"""Pages joined into one transaction (`engine.grouped`) and a record read twice in one commit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integration_project import load_landscape
from integration_project.connectors import Page
from integration_project.runtime.engine import canonicalize, grouped


def test_pages_without_a_cursor_join_the_next_up_to_the_size_and_the_page_with_one():
    pages = [Page([1, 2], None), Page([3, 4], None), Page([5], None), Page([6], "c1"), Page([7], "c2"), Page([8], None)]
    assert [(p.records, p.cursor) for p in grouped(iter(pages), size=4)] == [
        ([1, 2, 3, 4], None), ([5, 6], "c1"), ([7], "c2"), ([8], None)]


def test_pages_read_before_a_failed_read_are_handed_over_then_the_failure():
    def pages() -> Iterator[Page]:
        yield Page([1], None)
        raise RuntimeError("read failed")

    joined = grouped(pages(), size=500)
    assert next(joined).records == [1]
    with pytest.raises(RuntimeError, match="read failed"):
        next(joined)


def test_a_record_read_again_counts_as_read_last():
    leg = load_landscape("definitions").ingests()["customer"]
    props = {"firstname": "A", "lastname": "B", "country": "de"}
    good = {"id": "1", "updatedAt": "2026-01-01T00:00:00Z", "properties": {**props, "email": "a@example.com"}}
    bad = {**good, "properties": {**props, "email": "not an email"}}
    valid, rejects = canonicalize([bad, good], leg.binding.mapping, leg.object)
    assert list(valid) == ["1"] and rejects == []  # resolved by its later, valid version
    valid, rejects = canonicalize([good, bad], leg.binding.mapping, leg.object)
    assert list(valid) == ["1"] and [r[1] for r in rejects] == ["1"]  # parked, as a later page would park it
