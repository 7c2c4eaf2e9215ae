"""`Email` accepts, refuses and normalises exactly as pydantic's `EmailStr`, and settles plain addresses itself."""

from __future__ import annotations

import random
from unittest import mock

import pytest
from pydantic import BaseModel, EmailStr, TypeAdapter, ValidationError

from integration_project.model import email
from integration_project.model.email import Email

OURS, THEIRS = TypeAdapter(Email), TypeAdapter(EmailStr)
LONG_LABEL = "a" * 63

CRAFTED = [
    "ann@example.com", "Ann.Lee+tag@Example.COM", "a!#$%&'*+/=?^_`{|}~-@x.io", "x@a-b.c-d.museum",
    "x@sub.domain.co.uk", "x@a.b1c", "x@a.123", "x@a.b1", "x@a.b-", "x@-a.com", "x@a-.com", "x@a..com",
    "x@.a.com", "x@a.com.", ".x@a.com", "x.@a.com", "x..y@a.com", "@a.com", "x@", "x", "", "x@@a.com",
    "x@y@a.com", "x@a", "x@localhost", "x@a.localhost", "x@A.LOCAL", "x@a.test", "x@test", "x@a.invalid",
    "x@a.onion", "x@1.in-addr.arpa", "x@arpa.com", "x@local.com", "postmaster@a.com", "Postmaster@a.com",
    "INFO@a.com", "info.x@a.com", "x@ab--cd.com", "x@xn--bcher-kva.ch", "x@xn--zz.com", "a--b@c.com",
    "x@a--b.com", "x@ab-c.com", f"x@{LONG_LABEL}.com", f"x@{LONG_LABEL}a.com", f"x@a.{LONG_LABEL}",
    f"x@a.{LONG_LABEL}a", "x@" + ".".join([LONG_LABEL] * 3) + ".abcdefghijkl",
    "x@" + ".".join([LONG_LABEL] * 3) + ".abcdefghijklmn", "y" * 64 + "@a.com", "y" * 65 + "@a.com",
    "y" * 200 + "@" + "b" * 45 + ".com", "y" * 201 + "@" + "b" * 45 + ".com", " x@a.com", "x@a.com ",
    "x@a.com\n", "x\r@a.com", "Ann <ann@a.com>", "\"Ann Lee\" <ann@a.com>", "\"ann\"@a.com", "ann(x)@a.com",
    "ann,x@a.com", "ann x@a.com", "jörg@a.de", "x@bücher.ch", "x@ＡＢ.com", "x@a。com", "x@[1.2.3.4]",
    "x@a.com" + " " * 2100, "x\\y@a.com", "x@a_b.com", "x@a.c_m",
    "chloé.dubois@example.com", "ZOË@Example.com", "zoe\u0308@x.com", "ǅ@x.com", "ß@x.com", "ﬁ@x.com",
    "a\u037eb@x.com", "\u212aelvin@x.com", "\u2126@x.com", "한국@x.com", "مثال@x.com", "x\u200d@x.com",
    "\u0301x@x.com", "é" * 64 + "@x.com", "é" * 65 + "@x.com", "é" * 60 + "@" + "b" * 60 + "." + "c" * 60 + ".com",
    "é" * 62 + "@" + "b" * 60 + "." + "c" * 63 + ".com", "info@x.com", "\u0130nfo@x.com", "é.@x.com", "é..é@x.com",
]
PLAIN = ["a", "Z", "9", "x1", "ab", "-", "_", "+", "com", "COM", "0", "info", "local", "test"]
EDGE = ["--", ".", "..", "'", "~", "\"", "(", " ", "\n", "é", "ß", "xn--", "localhost", "invalid", "onion",
        "arpa", "Postmaster", "<", ">", "Ａ", "。", "[", "]", "\\", "@", "\u0301", "ﬁ", "\u212a", "한", "\u200d",
        "\u2126", "Zoë", "\u037e", "\U0001f600", "\ud800"]


def outcome(adapter: TypeAdapter, value: str) -> tuple[str, str]:
    """("ok", the normal form) or ("error", pydantic's message)."""
    try:
        return "ok", adapter.validate_python(value)
    except ValidationError as exc:
        return "error", exc.errors()[0]["msg"]


def generated(count: int, seed: int = 7) -> list[str]:
    """Addresses assembled from tokens near the rules' edges, long labels among them."""
    rng = random.Random(seed)

    def part(n: int) -> str:
        return "".join(rng.choice(PLAIN) if (r := rng.random()) < 0.85 else rng.choice(EDGE) if r < 0.97
                       else "a" * rng.randint(60, 66) for _ in range(n))

    values = []
    for _ in range(count):
        local = part(rng.randint(1, 3))
        labels = [part(rng.randint(1, 2)) for _ in range(rng.randint(1, 4))]
        values.append(local + rng.choice(["@", "@", "@", ""]) + ".".join(labels))
    return values


@pytest.mark.parametrize("value", CRAFTED)
def test_a_crafted_address_gets_emailstrs_answer(value: str) -> None:
    assert outcome(OURS, value) == outcome(THEIRS, value)


def test_generated_addresses_get_emailstrs_answers() -> None:
    values = generated(20_000)
    differ = [(v, outcome(OURS, v), outcome(THEIRS, v)) for v in values if outcome(OURS, v) != outcome(THEIRS, v)]
    assert differ == []
    accepted = sum(outcome(THEIRS, v)[0] == "ok" for v in values)
    assert 1_000 < accepted < len(values) - 1_000  # both sides of the line are exercised


def test_a_plain_address_is_settled_without_email_validator() -> None:
    plain = ["ann@example.com", "Ann.Lee+tag@Example.COM", "x@sub.domain.co.uk", f"x@{LONG_LABEL}.com",
             "chloé.dubois@Example.com", "한국@x.com"]
    with mock.patch.object(email, "validate_email", side_effect=AssertionError("fell back")):
        assert [OURS.validate_python(v) for v in plain] == [THEIRS.validate_python(v) for v in plain]


def test_a_model_field_refuses_with_emailstrs_error_and_schema() -> None:
    class Ours(BaseModel):
        email: Email

    class Theirs(BaseModel):
        email: EmailStr

    def errors(model: type[BaseModel]) -> list[dict]:
        with pytest.raises(ValidationError) as info:
            model.model_validate({"email": "x@a.localhost"})
        return [{k: e[k] for k in ("loc", "msg", "type")} for e in info.value.errors()]

    assert errors(Ours) == errors(Theirs)
    assert Ours.model_json_schema()["properties"]["email"] == {"format": "email", "title": "Email", "type": "string"}
    assert type(Ours(email="ann@a.com").email) is str
