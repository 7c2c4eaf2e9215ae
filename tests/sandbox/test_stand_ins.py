"""`integrations up` starts a stand-in only for the systems the sandbox has one for, and says
which it skipped, or that the sandbox is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration_project.launcher import SANDBOX_MISSING, _stand_ins
from integration_project.model import load_landscape
from integration_sandbox import SYSTEMS, landscape as stand_in


def test_every_system_of_the_example_has_its_stand_in() -> None:
    assert sorted(stand_in.stand_ins(load_landscape("definitions"))) == sorted(SYSTEMS)


def test_a_system_of_another_vendor_kind_gets_none_and_up_names_it(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path) -> None:
    landscape = load_landscape("definitions")
    crm = landscape.systems["crm"]
    landscape.systems["crm"] = crm.model_copy(update={"kind": "salesforce"})
    sandbox = _stand_ins(stand_in, landscape, tmp_path, 10, True, "http://127.0.0.1:1/webhooks/{system}")
    assert sorted(sandbox.systems) == sorted(set(SYSTEMS) - {"crm"})
    assert capsys.readouterr().out == "no sandbox for crm: they use what their declarations point at\n"


def test_without_the_sandbox_up_says_it_is_not_installed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert _stand_ins(None, load_landscape("definitions"), tmp_path, 10, True, "") is None
    assert capsys.readouterr().out == f"{SANDBOX_MISSING}; no stand-in systems start\n"
