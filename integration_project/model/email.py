"""`Email`: pydantic's `EmailStr`, same acceptance and normal form, with a fast path for plain addresses.

`EmailStr` hands every address to `email-validator`, pure Python that spends most of its time on
Unicode rules a plain address never needs (~20 µs an address; most of a pull's per-record cost). A
dot-atom local part (ASCII, or letters of any script already in NFC) at ASCII hostname labels,
which is nearly every address in real data, is settled here by one regular expression and the few
rules `email-validator` applies to such an address: a dotted domain ending in a letter, no
reserved `ab--` label, no special-use domain (as the library ships them), no case-insensitive
mailbox name, 64 characters before the `@` and 254 bytes in all at most. Anything else, valid or
not, goes to `EmailStr`'s own validation, so its errors are pydantic's. tests/model/test_email.py
compares the two on crafted and generated addresses.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import email_validator
from email_validator.rfc_constants import (CASE_INSENSITIVE_MAILBOX_NAMES, DOMAIN_MAX_LENGTH, EMAIL_MAX_LENGTH,
                                           LOCAL_PART_MAX_LENGTH)
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic.networks import validate_email
from pydantic_core import core_schema

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z0-9][A-Za-z0-9-]{0,61})?[A-Za-z]"  # all top-level domains end with a letter
_LOCAL = rf"[\u0080-\U0010FFFF{_ATEXT}]+"  # non-ASCII characters are then checked one by one
_PLAIN = re.compile(rf"({_LOCAL}(?:\.{_LOCAL})*)@((?:{_LABEL}\.)+{_TLD})")
_SPECIAL = tuple(f".{name}" for name in email_validator.SPECIAL_USE_DOMAIN_NAMES)  # a domain is one, or under one
_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


def normal_email(value: str) -> str:
    """The address in `EmailStr`'s normal form (the domain in lower case), or pydantic's error."""
    plain = _PLAIN.fullmatch(value)
    if plain is not None and "--" not in value:
        local, domain = plain.group(1, 2)
        domain = domain.lower()
        if (len(local) <= LOCAL_PART_MAX_LENGTH and len(domain) <= DOMAIN_MAX_LENGTH
                and not f".{domain}".endswith(_SPECIAL)
                and (len(value) <= EMAIL_MAX_LENGTH and local.lower() not in _MAILBOXES if local.isascii()
                     else _letters(local) and len(value.encode()) <= EMAIL_MAX_LENGTH)):
            return f"{local}@{domain}"
    return validate_email(value)[1]


def _letters(local: str) -> bool:
    """Whether a non-ASCII local part holds only ATEXT and letters, already in NFC, and may be used."""
    return (email_validator.ALLOW_SMTPUTF8 and unicodedata.is_normalized("NFC", local)
            and all(c.isascii() or unicodedata.category(c)[0] == "L" for c in local))


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
