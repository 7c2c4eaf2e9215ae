"""A REST API described by declaration: how its resources are read (paginator, record selector,
incremental cursor, parent/child) and written (create, update, lookup, conflict, idempotency key),
and how its errors answer. Read by the declarative connector (`connector: rest`).

Names follow dlt's `rest_api` source where they fit (paginator types and their parameters,
`data_selector`, `incremental.start_param` / `cursor_path` / `initial_value`), so a dlt user
recognises them. Templates (`path`, `body`, `idempotency_key`...) name payload fields in braces:
`/stock/{sku}`; a value that is one whole `{field}` keeps the field's type and is left out when the
field is absent; `{external_id}` is the vendor's id of the record.

Validation lives in validators on plain fields: Dagster Components derive the YAML schema from
these models and accept no constrained (Annotated) types in nested models.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from integration_project.model.strict import Strict

PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def check_template_path(value: str | None) -> str | None:
    """A path under the base URL: it starts with '/'."""
    if value is not None and not value.startswith("/"):
        raise ValueError(f"{value!r}: expected a path under the base URL, starting with '/'")
    return value


class Paginator(Strict):
    """How the pages of a listing follow each other (dlt's paginator names)."""

    type: Literal["json_link", "header_link", "cursor", "offset", "page_number", "single_page"] = Field(
        description="json_link: the next page's URL is in the body (next_url_path); header_link: in the "
        "`Link` header (rel=next); cursor: a cursor in the body (cursor_path) goes back as cursor_param; "
        "offset: offset_param/limit_param; page_number: page_param from base_page; single_page: one request")
    next_url_path: str = Field("next", description="json_link: where the body holds the next page's URL")
    links_next_key: str = Field("next", description="header_link: the Link relation of the next page")
    cursor_path: str = Field("next_cursor", description="cursor: where the body holds the next cursor")
    cursor_param: str = Field("cursor", description="cursor: the query parameter it goes back in")
    limit: int = Field(100, description="records asked per page (offset, page_number, cursor)")
    limit_param: str = Field("limit", description="the query parameter of the page size; '' sends none")
    offset_param: str = Field("offset", description="offset: the query parameter of the offset")
    page_param: str = Field("page", description="page_number: the query parameter of the page")
    base_page: int = Field(1, description="page_number: the number of the first page")
    total_path: str | None = Field(None, description="offset, page_number: where the body holds the total")
    stop_on_short_page: bool = Field(
        True, description="offset, page_number: a page with fewer than `limit` records is the last")

    @field_validator("limit")
    @classmethod
    def _limit(cls, value: int) -> int:
        if not 1 <= value <= 10_000:
            raise ValueError("must be 1 to 10000 records a page")
        return value


class Incremental(Strict):
    """Read only what changed: the newest `cursor_path` value read goes back as `start_param`."""

    start_param: str = Field(description="the query parameter that asks for changes since a value")
    cursor_path: str = Field(description="the record field holding its change time (or sequence)")
    initial_value: str | None = Field(None, description="sent on the first read, before any cursor")


class Endpoint(Strict):
    """What every listing of the API shares, overridable per resource (dlt's resource_defaults)."""

    params: dict[str, str] = Field(default_factory=dict, description="query parameters of every listing")
    headers: dict[str, str] = Field(default_factory=dict, description="headers of every request")
    data_selector: str | None = Field(
        None, description="where the body holds the records (dotted path); none: the body is the list")
    paginator: Paginator | None = Field(None, description="how pages follow each other; none: single_page")


class Lookup(Strict):
    """How to find the records of ours a vendor holds: a listing, our id at the binding's identity
    path, theirs at `id_path`. It makes a create whose answer was lost safe to send again."""

    path: str | None = Field(None, description="the listing; none: the resource's own read path")
    params: dict[str, str] = Field(default_factory=dict)
    data_selector: str | None = None
    id_path: str = Field("id", description="where each listed record holds the vendor's id")

    _path = field_validator("path")(check_template_path)


class Call(Strict):
    """One write request: method, path template, body template, encoding."""

    method: Literal["POST", "PUT", "PATCH"] = "POST"
    path: str
    body: dict[str, str] | None = Field(
        None, description="dotted field -> template over the mapped payload; none: the mapped payload as is")
    encoding: Literal["json", "form"] = "json"
    id_path: str | None = Field("id", description="where the answer holds the vendor's id; none: Write.id")

    _path = field_validator("path")(check_template_path)


class Conflict(Strict):
    """A status meaning "this record exists": its id (at `id_path` of the answer) is adopted."""

    status: int = 409
    id_path: str = Field(description="where the conflict's answer names the existing record's id")


class Each(Strict):
    """One call per item of a payload list (an order's lines), items with the same key summed."""

    items: str = Field(description="the payload list, e.g. lines")
    key: str = Field(description="the item field that groups items, e.g. sku")
    sum: list[str] = Field(default_factory=list, description="item fields summed over a group, e.g. quantity")


class Require(Strict):
    """All or nothing: each item's `field` at `path` must hold at least `at_least` before any item is
    sent. An item that looks short may be one an interrupted attempt already sent: it is sent (with
    its idempotency key) and a `refused_status` answer means it really is short: nothing more moves,
    the record is refused."""

    path: str
    field: str
    at_least: str = Field(description="template of the amount the item needs, e.g. {quantity}")
    refused_status: int = 409
    message: str = Field("insufficient {field} of {key}: {held} held, {needed} needed",
                         description="the refusal's reason, a template over the item, {held} and {needed}")

    _path = field_validator("path")(check_template_path)


class Write(Strict):
    """How records are written to one resource."""

    create: Call | None = None
    update: Call | None = Field(
        None, description="none: the vendor takes no change, a later version is acknowledged without a call")
    lookup: Lookup | None = Field(None, description="how our records are found; none: the vendor lists none")
    conflict: Conflict | None = None
    idempotency_key: str | None = Field(None, description="template of an idempotency key sent on creates")
    idempotency_header: str = "Idempotency-Key"
    id: str | None = Field(None, description="template of the vendor's id from the payload, e.g. {sku}, "
                           "where the answer carries none")
    each: Each | None = None
    require: Require | None = None
    serialize_by: str | None = Field(
        None, description="payload or item field: writes sharing a value are sent one at a time (a check then "
        "a move must not interleave)")

    @model_validator(mode="after")
    def _sound(self) -> Write:
        if self.create is None and self.update is None:
            raise ValueError("a write needs create or update")
        if self.require is not None and self.each is None:
            raise ValueError("require checks the items of `each`: declare each")
        if self.each is not None and (self.create is None or self.idempotency_key is None):
            raise ValueError("each sends an item again after a lost answer: it needs create and idempotency_key")
        return self


class Parent(Strict):
    """A child resource read once per record of its parent (an order's lines)."""

    resource: str = Field(description="the parent resource")
    resolve: dict[str, str] = Field(description="path placeholder -> the parent record's field")
    include_from_parent: list[str] = Field(
        default_factory=list, description="parent fields copied into each child as _<parent>_<field>")


class Resource(Endpoint):
    """One resource: a listing to read (`path`) and/or how it is written (`write`)."""

    path: str | None = Field(None, description="the listing read, a path under the base URL; none: write only")
    incremental: Incremental | None = None
    parent: Parent | None = None
    write: Write | None = None

    _path = field_validator("path")(check_template_path)


class RateLimit(Strict):
    """The vendor's rate-limit headers, honoured beside Retry-After: no request is sent while the
    remaining count is 0 until the reset (capped like Retry-After)."""

    remaining_header: str = "X-RateLimit-Remaining"
    reset_header: str = "X-RateLimit-Reset"
    reset: Literal["seconds", "milliseconds", "epoch"] = Field(
        "seconds", description="the reset header counts seconds (or milliseconds: HubSpot's rolling window's "
        "length) from now, or is a Unix time")


class Errors(Strict):
    """How a vendor's statuses answer, beyond the defaults (429 and 5xx transient, other >= 300 permanent)."""

    transient: list[int] = Field(default_factory=list, description="statuses worth retrying, e.g. 409 lock conflicts")
    permanent: list[int] = Field(default_factory=list, description="statuses that refuse the record, e.g. 503 "
                                 "for a vendor that means it")
    stop: list[int] = Field(default_factory=lambda: [401], description="statuses that stop the run at once, "
                            "dead-lettering nothing (a rotated token)")
    stop_when_repeated: list[int] = Field(
        default_factory=lambda: [403], description="statuses that stop the run when `repeats` calls in a row answer "
        "them (a revoked permission refuses every call; one 403 refuses a record)")
    repeats: int = 5
    rate_limit: RateLimit | None = None

    @field_validator("transient", "permanent", "stop", "stop_when_repeated")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        bad = [s for s in value if not 300 <= s <= 599]
        if bad:
            raise ValueError(f"expected HTTP statuses 300 to 599: {', '.join(map(str, bad))}")
        return value

    @field_validator("repeats")
    @classmethod
    def _repeats(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value


def placeholders(template: str) -> list[str]:
    """The payload fields a template names."""
    return PLACEHOLDER.findall(template)
