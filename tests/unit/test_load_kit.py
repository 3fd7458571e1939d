"""pbxcheck.loadkit and loadrun's pure parts: schedule, recorder, comparison, PNG, profiles, safety."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from pbxcheck import loadrun
from pbxcheck.errors import TargetError
from pbxcheck.loadkit import result as results
from pbxcheck.loadkit.png import timeline_png
from pbxcheck.loadkit.recorder import LATE_S, Recorder, pack_ids, unpack_ids
from pbxcheck.loadkit.schedule import Pacer, Schedule
from pbxcheck.target import LoadSettings, Target, dump_target, parse_target

# --- schedule -----------------------------------------------------------------------------------


def test_constant_rate_schedule_is_evenly_spaced_and_bounded() -> None:
    s = Schedule(rate=100, ramp=0, duration=2)
    assert s.total == 200
    assert [s.at(k) for k in (0, 1, 100)] == pytest.approx([0.0, 0.01, 1.0])
    assert s.at(200) is None and s.at(-1) is None


def test_ramp_is_linear_then_constant() -> None:
    s = Schedule(rate=100, ramp=10, duration=20)
    assert s.total == 100 * 10 // 2 + 100 * 10
    assert s.due(5) == pytest.approx(125)  # a quarter of the ramp's 500 slots by half its time
    # slot times invert the count: N(at(k)) == k
    for k in (1, 50, 499, 500, 501, 1400):
        t = s.at(k)
        assert t is not None and s.due(t) == pytest.approx(k)
    gaps = [s.at(k + 1) - s.at(k) for k in (600, 900)]  # type: ignore[operator]
    assert gaps == pytest.approx([0.01, 0.01])


def test_pacer_hands_out_absolute_times_until_the_end() -> None:
    p = Pacer(Schedule(rate=2, ramp=0, duration=2), start=100.0)
    assert [p.next() for _ in range(5)] == [100.0, 100.5, 101.0, 101.5, None]


@pytest.mark.parametrize(("rate", "ramp", "duration"), [(0, 0, 1), (1, -1, 1), (1, 0, 0)])
def test_schedule_rejects_nonsense(rate: float, ramp: float, duration: float) -> None:
    with pytest.raises(ValueError):
        Schedule(rate, ramp, duration)


# --- recorder -----------------------------------------------------------------------------------


def test_worker_snapshots_merge_into_the_same_percentiles() -> None:
    one, a, b = Recorder(), Recorder(), Recorder()
    for i in range(1, 1001):
        latency = i / 1000  # 1 ms .. 1 s
        one.record(latency, True, 1000 + i // 500)
        (a if i % 2 else b).record(latency, i % 10 != 0, 1000 + i // 500)
    a.sent(LATE_S * 2, True)
    b.sent(0.0, True, backlog=True)
    b.acked += ["x-1", "x-2"]
    a.calls.append("8101_20261129120000_1")
    b.calls.append("8102_20261129120000_2")
    a.asked_total, b.asked_total = 3, 4
    master = Recorder()
    master.merge(a.snapshot())
    master.merge(b.snapshot())
    assert a.hist.get_total_count() == 0  # a snapshot resets: the next report is a delta
    one.absorb_own()
    assert master.percentiles_ms() == one.percentiles_ms()
    assert master.percentiles_ms()["p99"] == pytest.approx(990, rel=0.01)
    out = master.export()
    assert (out["late"], out["backlog"], out["scheduled"], out["sent_window"], out["asked_total"]) == (1, 1, 2, 2, 7)
    assert unpack_ids(out["acked_z"]) == ["x-1", "x-2"]
    assert unpack_ids(out["calls_z"]) == ["8101_20261129120000_1", "8102_20261129120000_2"]
    assert not a.calls and not b.calls  # shipped with the snapshot, not twice
    assert sum(row[1] for row in out["timeline"]) == 1000
    assert sum(row[2] for row in out["timeline"]) == 100


def test_ids_pack_round_trip_and_empty() -> None:
    assert unpack_ids(pack_ids([])) == []
    ids = [f"load-abc-{i}" for i in range(1000)]
    assert unpack_ids(pack_ids(ids)) == ids


# --- comparison ---------------------------------------------------------------------------------


def _result(p99: float, throughput: float) -> dict[str, object]:
    return {
        "schema": results.SCHEMA,
        "scenario": "dialer-insert",
        "model": "open",
        "throughput": throughput,
        "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": p99, "p99.9": p99, "max": p99},
        "fail_ratio": 0.0,
    }


def test_compare_names_the_regressed_metric_with_both_values_and_the_ratio() -> None:
    verdicts = {v.metric: v for v in results.compare(_result(10, 300), _result(60, 299))}
    assert verdicts["p99_ms"].regressed and not verdicts["throughput"].regressed
    assert verdicts["p99_ms"].ratio == pytest.approx(6.0)
    line = verdicts["p99_ms"].line()
    assert "p99_ms" in line and "10.000" in line and "60.000" in line and "6.00" in line


def test_compare_throughput_drop_and_tolerance_override() -> None:
    v = {x.metric: x for x in results.compare(_result(10, 300), _result(10, 250))}
    assert v["throughput"].regressed
    v = {x.metric: x for x in results.compare(_result(10, 300), _result(10, 250), {"throughput": 0.2})}
    assert not v["throughput"].regressed


def test_a_sub_floor_latency_difference_is_noise_not_a_regression() -> None:
    v = {x.metric: x for x in results.compare(_result(1.0, 300), _result(1.5, 300))}
    assert not v["p99_ms"].regressed  # +50 % but half a millisecond


def test_read_refuses_what_is_not_a_result(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"a": 1}')
    with pytest.raises(ValueError, match="not a pbxcheck load result"):
        results.read(p)
    with pytest.raises(ValueError, match="no such result file"):
        results.read(tmp_path / "missing.json")


def test_tolerance_flags() -> None:
    assert loadrun.parse_tolerances(["p99_ms=0.2"]) == {"p99_ms": 0.2}
    with pytest.raises(ValueError, match="METRIC=RATIO"):
        loadrun.parse_tolerances(["p42=1"])


# --- PNG ----------------------------------------------------------------------------------------


def test_png_is_a_valid_image() -> None:
    data = timeline_png([[1000 + i, 100 + i, i % 3, 1.0, 5.0, 9.0] for i in range(30)], width=300, height=200)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    length, kind = struct.unpack(">I4s", data[8:16])
    width, height = struct.unpack(">II", data[16:24])
    assert (kind, width, height) == (b"IHDR", 300, 200)
    idat_at = data.index(b"IDAT")
    idat_len = struct.unpack(">I", data[idat_at - 4 : idat_at])[0]
    raw = zlib.decompress(data[idat_at + 4 : idat_at + 4 + idat_len])
    assert len(raw) == height * (1 + width * 3)


# --- profiles, target [load], safety -------------------------------------------------------------


def test_profile_files(tmp_path: Path) -> None:
    p = tmp_path / "p.toml"
    p.write_text("[weights]\ninsert = 3\nstatusramais = 1\nclicktocall = 0\n")
    assert loadrun.read_profile(p) == {"insert": 3, "statusramais": 1}
    p.write_text("[weights]\ndelete = 1\n")
    with pytest.raises(ValueError, match="unknown action 'delete'"):
        loadrun.read_profile(p)
    assert loadrun.read_profile(Path(loadrun.bundled_dir("load")) / "profiles" / "mixed.toml")


def _target(load: dict[str, object] | None = None, url: str = "https://127.0.0.1:8443") -> Target:
    data: dict[str, object] = {
        "api": {"url": url, "plain_url": "http://127.0.0.1:8080"},
        "credentials": {"login": "root", "senha": "s3nha-long", "token": "t0ken-long"},
        "disposable": {"campaign": "900", "classe5_client": "teste"},
    }
    if load is not None:
        data["load"] = load
    return parse_target(data, path="t.toml")


def test_target_load_section_parses_and_round_trips() -> None:
    t = _target(
        {
            "max_rate": 50,
            "destinations": "1130000000-1130000099",
            "p99_ms": 250,
            "fail_ratio": 0.01,
            "lost": 0,
            "think_time": 2,
            "tolerance": {"p99_ms": 0.2},
        }
    )
    assert t.load == LoadSettings(
        max_rate=50.0,
        destinations=("1130000000", "1130000099"),
        p99_ms=250.0,
        fail_ratio=0.01,
        lost=0,
        think_time=2.0,
        tolerance={"p99_ms": 0.2},
    )
    import tomllib

    again = parse_target(tomllib.loads(dump_target(t)), path="t.toml")
    assert again.load == t.load
    assert _target({"tolerance": 0.15}).load.tolerance == {"p99_ms": 0.15, "throughput": 0.15}
    assert _target().load == LoadSettings()


@pytest.mark.parametrize(
    ("load", "key"),
    [
        ({"max_rate": 0}, "load.max_rate"),
        ({"destinations": "123-4567"}, "load.destinations"),
        ({"destinations": "1130000099-1130000000"}, "load.destinations"),
        ({"lost": -1}, "load.lost"),
        ({"fail_ratio": 2}, "load.fail_ratio"),
        ({"rate": 5}, "load.rate"),
        ({"tolerance": "lots"}, "load.tolerance"),
    ],
)
def test_target_load_section_errors_name_the_key(load: dict[str, object], key: str) -> None:
    with pytest.raises(TargetError) as info:
        _target(load)
    assert info.value.key == key


def test_a_remote_target_needs_a_rate_cap_and_a_destination_range() -> None:
    remote = "https://pbx.example.com"
    problem = loadrun.safety_problem(_target(url=remote), None)
    assert problem and "max_rate and destinations" in problem
    ok = _target({"max_rate": 50, "destinations": "1130000000-1130000099"}, url=remote)
    assert loadrun.safety_problem(ok, 50) is None
    assert "above the target's [load] max_rate 50" in (loadrun.safety_problem(ok, 51) or "")
    assert loadrun.safety_problem(_target(), 10_000) is None  # loopback: free
    assert loadrun.is_loopback("https://127.8.9.1:1") and loadrun.is_loopback("https://[::1]:1")
    assert not loadrun.is_loopback("https://10.0.0.1")
