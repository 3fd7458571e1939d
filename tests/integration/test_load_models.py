"""`pbxcheck load`, issue 11: the open model, result files, baselines against the slow-api fault,
distributed runs, safety refusals and one-line transport errors. Each run is a few seconds against
the embedded central (or one started here) on loopback, bounded in time and count."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pbxcheck.central.process import CentralProcess

pytestmark = pytest.mark.slow


def _load(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pbxcheck", "load", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def _result(reports: Path, scenario: str) -> dict:  # type: ignore[type-arg]
    return json.loads((reports / "load" / f"{scenario}.result.json").read_text())


def _passing_run(tmp_path: Path, scenario: str, *args: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    """A run that must exit 0; a shared 2-core machine may delay a few sends, so lateness is lenient."""
    reports = tmp_path / "reports"
    proc = _load(tmp_path, scenario, *args, "--max-late-ratio", "0.5", "--reports", str(reports))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return out, _result(reports, scenario)


def test_open_model_result_file_csv_and_plot_agree(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    out, res = _passing_run(tmp_path, "dialer-insert", "--rate", "60", "--ramp", "1s", "--run-time", "4s")
    assert res["model"] == "open" and res["latency_ms"]["corrected"] is True
    assert res["requests"] == 60 // 2 + 60 * 3  # the schedule: half the rate over the ramp, then the rate
    assert res["generator"]["late_ratio"] <= 0.5
    assert res["lost"] == {"acknowledged": res["requests"], "checked": True, "missing": 0, "examples": []}
    assert res["cleanup"]["done"] is True
    assert set(res["latency_ms"]) >= {"p50", "p90", "p99", "p99.9", "max"}
    assert res["pbxcheck_version"] and res["environment"]["locust"]
    # Locust's summary is printed (it vanished with --json-file), and the CSV says what the JSON says
    assert "Aggregated" in out and "Response time percentiles" in out
    with (reports / "load" / "dialer-insert_stats.csv").open() as f:
        agg = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"][0]
    assert (int(agg["Request Count"]), int(agg["Failure Count"])) == (res["requests"], res["failures"])
    assert (reports / "load" / "dialer-insert.png").read_bytes().startswith(b"\x89PNG")
    assert (reports / "load" / "dialer-insert.html").is_file()


def test_a_baseline_catches_the_slow_api_fault_and_names_the_metric(tmp_path: Path) -> None:
    base_dir, slow_dir = tmp_path / "base", tmp_path / "slow"
    args = ("dialer-insert", "--rate", "40", "--run-time", "4s", "--max-late-ratio", "0.5")
    clean = _load(tmp_path, *args, "--reports", str(base_dir))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    baseline = base_dir / "load" / "dialer-insert.result.json"
    # p50 judged too: on a busy shared machine a stall can put the clean run's p99 near the slow one's
    slow = _load(
        tmp_path,
        *args,
        "--fault",
        "slow-api",
        "--baseline",
        str(baseline),
        "--tolerance",
        "p50_ms=0.1",
        "--reports",
        str(slow_dir),
    )
    out = slow.stdout + slow.stderr
    assert slow.returncode == 1, out
    assert "regression beyond tolerance:" in out
    line = next(x for x in out.splitlines() if "REGRESSION" in x and "p50_ms" in x)
    assert "p50_ms: baseline" in line and "this run" in line and "ratio" in line
    res = _result(slow_dir, "dialer-insert")
    assert res["latency_ms"]["p50"] >= 50  # the fault's 50 ms per answer
    regressed = [v["metric"] for v in res["comparison"]["verdicts"] if v["regressed"]]
    assert "p50_ms" in regressed and "throughput" not in regressed, regressed
    # the same comparison offline
    again = _load(tmp_path, "compare", str(baseline), str(slow_dir / "load" / "dialer-insert.result.json"))
    assert again.returncode == 1 and "REGRESSION" in again.stdout
    same = _load(tmp_path, "compare", str(baseline), str(baseline))
    assert same.returncode == 0, same.stdout + same.stderr


def test_two_processes_end_to_end(tmp_path: Path) -> None:
    _, res = _passing_run(tmp_path, "dialer-insert", "--processes", "2", "--rate", "40", "--run-time", "4s")
    assert res["settings"]["processes"] == 2
    assert res["requests"] == 160  # each worker half the rate: together the whole schedule
    assert res["latency_ms"]["count"] == res["requests"]  # both workers' histograms reached the master
    assert res["lost"]["missing"] == 0 and res["lost"]["acknowledged"] == 160


def test_master_and_worker_share_the_target_file(tmp_path: Path) -> None:
    with CentralProcess(state_dir=tmp_path / "central") as t:
        tfile = str(t.path)
        reports = tmp_path / "reports"
        master = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pbxcheck",
                "load",
                "click-to-call",
                "--master",
                "--expect-workers",
                "1",
                "--target",
                tfile,
                "--rate",
                "20",
                "--run-time",
                "3s",
                "--max-late-ratio",
                "0.5",
                "--reports",
                str(reports),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
        worker = _load(tmp_path, "click-to-call", "--worker", "--target", tfile, timeout=120)
        out, _ = master.communicate(timeout=120)
        assert master.returncode == 0, out + worker.stdout + worker.stderr
        assert worker.returncode == 0, worker.stdout + worker.stderr
        res = _result(reports, "click-to-call")
        assert res["requests"] == 60 and res["failures"] == 0


def test_mixed_and_status_polling_run_every_action(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = _load(
        tmp_path, "mixed", "--rate", "100", "--run-time", "3s", "--max-late-ratio", "0.5", "--reports", str(reports)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = set(_result(reports, "mixed")["locust"]["by_name"])
    assert names == {"POST insert", "POST clicktocall", "POST statusramais", "POST statusdiscador"}
    proc = _load(
        tmp_path, "status-polling", "--users", "3", "--think-time", "0.1", "--run-time", "3s", "--reports", str(reports)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _result(reports, "status-polling")["model"] == "closed"


def test_a_tls_error_is_one_failure_line_not_a_traceback_per_request(tmp_path: Path) -> None:
    with CentralProcess(state_dir=tmp_path / "central") as t:
        text = Path(str(t.path)).read_text()
        plain_port = t.plain_url.rsplit(":", 1)[1].strip("/")
        wrong = tmp_path / "wrong.toml"  # https on the plain-HTTP port: every handshake fails
        wrong.write_text(text.replace(f'url = "{t.api_url}"', f'url = "https://127.0.0.1:{plain_port}"'))
        proc = _load(
            tmp_path,
            "dialer-insert",
            "--target",
            str(wrong),
            "--users",
            "2",
            "--think-time",
            "0.05",
            "--run-time",
            "2s",
            "--no-cleanup",
            "--reports",
            str(tmp_path / "r"),
        )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    assert "SSLError" in out or "SSL" in out
    res = _result(tmp_path / "r", "dialer-insert")
    assert res["failures"] == res["requests"] > 0
    assert len(res["failures_by_message"]) == 1


@pytest.mark.parametrize(
    ("scenario", "fault", "expected"),
    [
        ("dialer-insert", "status-string-changed", """POST insert: answer b'["Status","Ok"]'"""),
        ("click-to-call", "c2c-wrong-status", "POST clicktocall: answer ['Status', "),
    ],
)
def test_a_wrong_answer_is_a_failure_one_line_per_kind(
    tmp_path: Path, scenario: str, fault: str, expected: str
) -> None:
    """Every answer is judged against the contract: a central answering wrongly fails every request,
    under one failure line (not one per request, nor per call ID), never a traceback."""
    reports = tmp_path / "reports"
    args = ["--users", "2", "--spawn-rate", "2", "--think-time", "0.05", "--run-time", "2s", "--fault", fault]
    proc = _load(tmp_path, scenario, *args, "--agents", "0", "--reports", str(reports))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    res = _result(reports, scenario)
    assert res["failures"] == res["requests"] > 0
    assert len(res["failures_by_message"]) == 1, res["failures_by_message"]
    assert res["failures_by_message"][0][1].startswith(expected), res["failures_by_message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dialer-insert", "--worker"], "a --worker needs --target"),
        (["dialer-insert", "--rate", "0"], "--rate must be a positive number"),
        (["dialer-insert", "--rate", "10", "--ramp", "5s", "--run-time", "5s"], "--ramp must be shorter"),
        (["dialer-insert", "--fault", "no-such-fault"], "unknown fault"),
        (["compare", "a.json"], "usage: pbxcheck load compare"),
        (["compare", "a.json", "b.json"], "no such result file"),
        ([], "a scenario is needed"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = _load(tmp_path, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_remote_target_without_load_limits_is_refused_before_any_request(tmp_path: Path) -> None:
    target = tmp_path / "remote.toml"
    target.write_text(
        '[api]\nurl = "https://192.0.2.10"\nplain_url = "http://192.0.2.10"\n'
        '[credentials]\nlogin = "root"\nsenha = "x-senha-x"\ntoken = "x-token-x"\n'
        '[disposable]\ncampaign = "900"\nclasse5_client = "teste"\n'
    )
    proc = _load(tmp_path, "dialer-insert", "--target", str(target), "--run-time", "2s")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "refused" in out and "max_rate and destinations" in out
    assert "Locust" not in out
    proc = _load(tmp_path, "--list")
    assert proc.returncode == 0 and "dialer-insert" in proc.stdout and "mixed" in proc.stdout


def test_the_target_files_max_rate_caps_the_closed_model(tmp_path: Path) -> None:
    with CentralProcess(state_dir=tmp_path / "central") as t:
        capped = tmp_path / "capped.toml"
        capped.write_text(Path(str(t.path)).read_text() + "\n[load]\nmax_rate = 20\n")
        reports = tmp_path / "reports"
        proc = _load(
            tmp_path,
            "dialer-insert",
            "--target",
            str(capped),
            "--users",
            "4",
            "--think-time",
            "0",
            "--run-time",
            "3s",
            "--reports",
            str(reports),
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        res = _result(reports, "dialer-insert")
        assert 0 < res["requests"] <= 20 * 3 + 4  # not the thousands an unpaced loop sends
        refused = _load(tmp_path, "dialer-insert", "--target", str(capped), "--rate", "21", "--run-time", "2s")
        assert refused.returncode == 2 and "above the target's [load] max_rate 20" in refused.stdout
