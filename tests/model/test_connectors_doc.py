"""docs/connectors.md stays true: its reference is the models' own, and every example declaration validates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from integration_project.model import Api
from integration_project.model.reference import BEGIN, END, markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "connectors.md"


def test_the_reference_is_generated_from_the_models():
    text = DOC.read_text()
    assert BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END == markdown()


EXAMPLES = [b for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S) if b.startswith("api:")]


@pytest.mark.parametrize("example", EXAMPLES, ids=[str(i) for i in range(len(EXAMPLES))])
def test_every_example_api_declaration_validates(example):
    assert Api.model_validate(yaml.safe_load(example)["api"])


def test_there_is_an_example_per_paginator_and_auth_type():
    apis = [Api.model_validate(yaml.safe_load(e)["api"]) for e in EXAMPLES]
    paginators = {a.defaults.paginator.type for a in apis if a.defaults.paginator} | {
        r.paginator.type for a in apis for r in a.resources.values() if r.paginator}
    assert paginators >= {"json_link", "header_link", "cursor", "offset", "page_number"}
    assert {(a.auth.type, a.auth.location) for a in apis} >= {
        ("bearer", "header"), ("api_key", "header"), ("api_key", "query"), ("basic", "header"),
        ("oauth2_client_credentials", "header")}
