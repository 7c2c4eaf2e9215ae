"""What the sandbox's seed reports imply for the hub: which CRM contacts it must park."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

INVALID = ("invalid_email", "missing_email", "inconsistent_country")


def crm_parked(report: dict[str, Any]) -> set[str]:
    """Contacts the hub parks: the invalid ones, and every duplicate but the lowest id of its group
    (the hub keeps the first record it sees with an email; a full scan reads by id)."""
    groups: dict[str, set[int]] = defaultdict(set)
    for duplicate, original in report["duplicate_of"].items():
        groups[original] |= {int(original), int(duplicate)}
    losers = {str(i) for group in groups.values() for i in group - {min(group)}}
    return {i for problem in INVALID for i in report["problems"][problem]} | losers
