"""A target file pins the answer of an [unspecified] clause, or asks a hardening finding to fail the run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pbxcheck import runner
from pbxcheck.central.process import CentralProcess
from pbxcheck.target import Target, dump_target

pytestmark = pytest.mark.slow


def _run(target: Target, tmp: Path, name: str, select: str, module: str) -> tuple[int, dict[str, str]]:
    path = tmp / f"{name}.toml"
    path.write_text(dump_target(target), encoding="utf-8")
    out = io.StringIO()
    code = runner.run(str(path), str(tmp / name), paths=[module], extra_args=["-k", select], out=out)
    table = json.loads((tmp / name / "clauses.json").read_text(encoding="utf-8"))
    return code, {cid: row["status"] for cid, row in table["clauses"].items()}


def test_pins_and_fail_on(tmp_path: Path) -> None:
    with CentralProcess() as target:
        wrong_token = "wrong_token_denied and statusramais"
        code, verdict = _run(
            target.with_(pins={"AUTH-2.token": '["Status","Token Invalido"]'}),
            tmp_path,
            "pin-other",
            wrong_token,
            "test_auth.py",
        )
        assert code == 1 and verdict["AUTH-2"] == "failed"
        code, verdict = _run(
            target.with_(pins={"AUTH-2.token": '["Status","Login/Senha Invalido"]'}),
            tmp_path,
            "pin-same",
            wrong_token,
            "test_auth.py",
        )
        assert code == 0 and verdict["AUTH-2"] == "unspecified-observed"
        code, verdict = _run(
            target.with_(fail_on_findings=("REC-2",)), tmp_path, "fail-on", "without_credentials", "test_reports.py"
        )
        assert code == 1 and verdict["REC-2"] == "failed"
        code, verdict = _run(target, tmp_path, "finding", "without_credentials", "test_reports.py")
        assert code == 0 and verdict["REC-2"] == "finding"
