"""The lenient reader of PHP-style answers: forgive, record, never crash."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbxcheck.answers import parse_answer, record_pairs_agree
from pbxcheck.contract import CONTACT_COLUMNS
from pbxcheck.errors import AnswerError


def test_status_pair() -> None:
    a = parse_answer(b'["Status","OK"]')
    assert a.is_status("OK") and a.lenient == ()
    assert parse_answer(b'["Total Deletados", "1528"]').status_pair == ("Total Deletados", "1528")
    assert parse_answer(b'[{"a":"b"}]').status_pair is None


def test_document_amb6_backslashes_are_forgiven_and_recorded() -> None:
    # The document's statusdetalhado example, as a PHP central that forgot to escape would send it.
    raw = rb'{"id":"9050292","gravacao":"2020\12\30\9991-E-123123123123123","tempofila":null}'
    a = parse_answer(raw)
    assert a.value["gravacao"] == "2020\\12\\30\\9991-E-123123123123123"
    assert a.value["tempofila"] is None
    assert any("AMB-6" in note for note in a.lenient)


def test_typographic_quotes_amb5() -> None:
    a = parse_answer("[“Status”,“OK”]".encode())
    assert a.is_status("OK")
    assert any("AMB-5" in note for note in a.lenient)


def test_valid_escapes_untouched() -> None:
    a = parse_answer(rb'{"a":"x\\y\n\u00e1"}')
    assert a.value["a"] == "x\\y\n\u00e1" and a.lenient == ()


@pytest.mark.parametrize("raw", [b"", b"   ", b"<html>500</html>", b"[1,", b"\xff\xfe{"])
def test_unreadable_bodies_raise_answer_error(raw: bytes) -> None:
    with pytest.raises(AnswerError):
        parse_answer(raw)


@given(st.binary(max_size=200))
def test_never_crashes(raw: bytes) -> None:
    try:
        parse_answer(raw)
    except AnswerError:
        pass


@given(
    st.recursive(
        st.none() | st.text() | st.integers(), lambda c: st.lists(c) | st.dictionaries(st.text(), c), max_leaves=20
    )
)
def test_valid_json_round_trips(value: object) -> None:
    assert parse_answer(json.dumps(value).encode()).value == value


def test_record_pairs() -> None:
    rec = {}
    for i, name in enumerate(CONTACT_COLUMNS):
        rec[str(i)] = rec[name] = f"v{i}"
    assert record_pairs_agree(rec, CONTACT_COLUMNS) == []
    rec["10"] = "x"
    del rec["cob"]
    problems = record_pairs_agree(rec, CONTACT_COLUMNS)
    assert "position 10 = 'x' but status = 'v10'" in problems
    assert "column 'cob' missing" in problems
