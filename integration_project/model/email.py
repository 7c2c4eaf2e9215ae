"""`Email`: pydantic's `EmailStr`, same acceptance and normal form, with a fast path for plain addresses.

`EmailStr` hands every address to `email-validator`, pure Python that spends most of its time on
Unicode rules a plain ASCII address never needs (~20 µs an address; most of a pull's per-record
cost). An address made only of a dot-atom local part and ASCII hostname labels, which is nearly
every address in real data, is settled here by one regular expression and the few rules
`email-validator` applies to such an address (a dotted domain ending in a letter, no reserved
`ab--` label, no special-use domain, no case-insensitive mailbox name, 254 characters at most).
Anything else, valid or not, goes to `EmailStr`'s own validation, so its errors are pydantic's.
tests/model/test_email.py compares the two on crafted and generated addresses.
"""

from __future__ import annotations

import re
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, DOMAIN_MAX_LENGTH, EMAIL_MAX_LENGTH
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic.networks import validate_email
from pydantic_core import core_schema

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z0-9][A-Za-z0-9-]{0,61})?[A-Za-z]"  # all top-level domains end with a letter
_PLAIN = re.compile(rf"([{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@((?:{_LABEL}\.)+{_TLD})")
_SPECIAL = frozenset(SPECIAL_USE_DOMAIN_NAMES)
_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


def normal_email(value: str) -> str:
    """The address in `EmailStr`'s normal form (the domain in lower case), or pydantic's error."""
    plain = _PLAIN.fullmatch(value)
    if plain is not None and len(value) <= EMAIL_MAX_LENGTH and "--" not in value:
        local, domain = plain.group(1), plain.group(2).lower()
        labels = domain.split(".")
        if (len(domain) <= DOMAIN_MAX_LENGTH and local.lower() not in _MAILBOXES
                and not any(".".join(labels[i:]) in _SPECIAL for i in range(len(labels)))):
            return f"{local}@{domain}"
    return validate_email(value)[1]


class Email(str):
    """An email address, validated and normalised as pydantic's `EmailStr` does, faster; a field of
    this type holds a plain `str`, and its JSON schema is `EmailStr`'s (`format: email`)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[Any], handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(normal_email, core_schema.str_schema())

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), "type": "string", "format": "email"}
