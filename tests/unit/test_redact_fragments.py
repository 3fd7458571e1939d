"""Fragments of secrets: no run of 6+ characters of any secret survives the Redactor, and the leak
scan finds one wherever it was planted (files, junit.xml, allure JSON, a terminal stream)."""

from __future__ import annotations

import json
import string
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pbxcheck.redact import REDACTED, Leak, Redactor, scan_for_leaks, scan_text

ALPHABET = string.ascii_letters + string.digits + "-_"
secrets_st = st.lists(st.text(ALPHABET, min_size=5, max_size=64), min_size=1, max_size=4)
# filler that can never hold a secret's characters: the property below is then exact
filler_st = st.text(" .,:;'\"()\n=é€", max_size=40)


def _windows(secret: str, n: int = 6) -> set[str]:
    return {secret[i : i + n] for i in range(len(secret) - n + 1)}


@settings(max_examples=300, deadline=None)
@given(secrets_st, st.data())
def test_no_six_characters_of_a_secret_survive(secrets: list[str], data: st.DataObject) -> None:
    pieces = []
    for _ in range(data.draw(st.integers(1, 6))):
        pieces.append(data.draw(filler_st))
        s = data.draw(st.sampled_from(secrets))
        start = data.draw(st.integers(0, len(s)))
        end = data.draw(st.integers(start, len(s)))
        pieces.append(s[start:end])
    text = "".join(pieces) + data.draw(filler_st)
    out = Redactor(secrets).text(text)
    for part in out.split(REDACTED):
        for s in secrets:
            assert not (_windows(s) & _windows(part)), "a 6-character run of a secret survived"
            if len(s) < 6:
                assert s not in part
    assert not scan_text(out.replace(REDACTED, " "), secrets)


@settings(max_examples=200, deadline=None)
@given(secrets_st, st.text(max_size=200))
def test_text_without_secret_runs_is_unchanged(secrets: list[str], text: str) -> None:
    r = Redactor(secrets)
    has_run = any(_windows(s) & _windows(text) for s in secrets) or any(len(s) < 6 and s in text for s in secrets)
    if not has_run:
        assert r.text(text) == text
        assert r.bytes(text.encode()) == text.encode()  # ASCII secrets: byte runs are character runs


def test_truncated_locals_and_one_character_off_tokens() -> None:
    senha, token = "Zq8-x_Y2abcdEFGH", "0123456789abcdef0123456789abcdef"
    r = Redactor([senha, token])
    line = f"'senha': '{senha[:13]}...', wrong = 'X{token[1:]}', tail {token[-6:]} short {token[:5]}"
    out = r.text(line)
    assert out == "'senha': '[redacted]...', wrong = 'X[redacted]', tail [redacted] short 01234"
    assert r.bytes(line.encode()) == out.encode()
    assert r.data({"k": [line]}) == {"k": [out]}


def test_short_secret_is_replaced_whole_only() -> None:
    r = Redactor(["abc12"])
    assert r.text("xabc12y abc1") == f"x{REDACTED}y abc1"


def test_leak_scan_finds_planted_fragments_in_files_and_junit(tmp_path: Path) -> None:
    senha, token = "s3nh4-Secreta_42", "00112233445566778899aabbccddeeff"
    (tmp_path / "allure-results").mkdir()
    (tmp_path / "clean.txt").write_text("nothing here 00112 s3nh4\n", encoding="utf-8")
    (tmp_path / "failures.txt").write_text("line one\nline two 'senha': 's3nh4-Secr...'\n", encoding="utf-8")
    (tmp_path / "junit.xml").write_text(
        f'<testsuite>\n<failure message="tok X{token[1:20]}"/>\n</testsuite>\n', encoding="utf-8"
    )
    (tmp_path / "allure-results" / "a-result.json").write_text(json.dumps({"m": f"{senha[2:10]}"}), encoding="utf-8")
    (tmp_path / "allure-results" / "att.bin").write_bytes(b"\x00\xff" + token[5:12].encode() + b"\x00")
    leaks = scan_for_leaks([tmp_path], {"senha": senha, "token": token})
    where = {(Path(k.where).name, k.line, k.kind, k.secret) for k in leaks}
    assert where == {
        ("failures.txt", 2, "senha", 0),
        ("junit.xml", 2, "token", 1),
        ("a-result.json", 1, "senha", 0),
        ("att.bin", 1, "token", 1),
    }
    junit = next(k for k in leaks if k.where.endswith("junit.xml"))
    assert junit.length == 19
    # a leak never carries the fragment itself: printing it is safe
    for k in leaks:
        assert not (_windows(senha) & _windows(str(k))) and not (_windows(token) & _windows(str(k)))
    # a file named after a secret, and a single file given directly
    (tmp_path / f"x-{token[:8]}.txt").write_text("", encoding="utf-8")
    assert [k.line for k in scan_for_leaks([tmp_path / f"x-{token[:8]}.txt"], [token])] == [0]
    assert scan_for_leaks([tmp_path / "clean.txt"], [senha, token]) == []


def test_leak_scan_of_escaped_spellings_and_a_terminal_stream() -> None:
    senha = 'ab"cd<ef&gh'
    stream = "first\nsecond " + json.dumps(senha)[1:9] + "\n" + "third c&lt;ef&amp;g\n"
    leaks = scan_text(stream, [senha])
    assert [(k.line, k.where) for k in leaks] == [(2, "<terminal>"), (3, "<terminal>")]
    assert isinstance(leaks[0], Leak) and leaks[0].kind == "secret #0"
    assert scan_text("nothing", [senha]) == []


def test_a_short_run_inside_a_longer_identifier_is_a_coincidence_in_other_tools_files(tmp_path: Path) -> None:
    """Allure's UUIDs and md5 history IDs are hex: 6 hex characters of a token turn up there by chance
    in about 3% of runs. The scan and redact_tree leave such a run alone; a run that stands alone, or
    is 10+ characters long, is a leak wherever it is."""
    from pbxcheck import report

    token = "00112233445566778899aabbccddeeff"
    uuid = f"9f8e7d6c-5b4a-4c3d-8e{token[10:16]}-1a2b3c4d5e6f"  # 6 token characters inside a UUID group
    result = tmp_path / f"{uuid}-result.json"
    result.write_text(
        json.dumps({"uuid": uuid, "attachments": [{"source": f"{uuid}-attachment.txt"}]}), encoding="utf-8"
    )
    assert scan_for_leaks([tmp_path], [token]) == []
    assert len(scan_for_leaks([tmp_path], [token], strict=True)) == 3  # the name and the two in the JSON
    report.redact_tree(tmp_path, Redactor([token]))
    assert result.exists() and uuid in result.read_text(encoding="utf-8")  # the attachment link still holds
    # pytest's texts and the terminal are redacted without that exception
    assert Redactor([token]).text(uuid) != uuid
    for leak in (f"id={token[10:16]};", f"X{token[1:7]}", f"{token[3:13]}abcdef9", f"'{token[:13]}...'"):
        assert scan_text(leak, [token]), leak
    assert scan_text(f"abc{token[10:16]}9", [token]) == []
