"""Parser and stream framer: leniency, strictness, framing under any split, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbxcheck.sip import samples
from pbxcheck.sip.errors import (
    BadContentLength,
    BadHeader,
    BadStartLine,
    BadUri,
    IncompleteMessage,
    SipParseError,
)
from pbxcheck.sip.message import Request, Response, to_bytes
from pbxcheck.sip.parser import StreamFramer, parse_message
from pbxcheck.sip.validate import uas_precheck

OPTIONS = (
    b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\n"
    b"To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def test_leading_crlf_and_bare_lf_are_tolerated() -> None:
    m = parse_message(b"\r\n\r\n" + OPTIONS.replace(b"\r\n", b"\n"))
    assert isinstance(m, Request) and m.call_id == "c"


def test_status_line_variants() -> None:
    r = parse_message(b"SIP/2.0 180\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(r, Response) and (r.status, r.reason) == (180, "")
    r = parse_message(b"sip/2.0 200 OK fine\r\n\r\n")
    assert isinstance(r, Response) and r.reason == "OK fine" and r.version == "sip/2.0"


@pytest.mark.parametrize(
    "start, error",
    [
        (b"SIP/2.0 20 OK", BadStartLine),
        (b"SIP/2.0 700 Huh", BadStartLine),
        (b"SIP/2.0 2OO OK", BadStartLine),
        (b"SIP/x 200 OK", BadStartLine),
        (b"OPTIONS sip:a@b", BadStartLine),
        (b"OPTIONS sip:a@b HTTP/1.1", BadStartLine),
        (b"OPT(IONS sip:a@b SIP/2.0", BadStartLine),
        (b"OPTIONS sip:a@b?x=y SIP/2.0", BadUri),
        (b"OPTIONS <sip:a@b> SIP/2.0", BadUri),
    ],
)
def test_bad_start_lines(start: bytes, error: type[SipParseError]) -> None:
    with pytest.raises(error):
        parse_message(start + b"\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize(
    "data, error",
    [
        (b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\n", IncompleteMessage),
        (b"OPTIONS sip:a@b SIP/2.0\r\n folded-first: x\r\n\r\n", BadHeader),
        (b"OPTIONS sip:a@b SIP/2.0\r\nno colon here\r\n\r\n", BadHeader),
        (b"OPTIONS sip:a@b SIP/2.0\r\nbad name: x\r\n\r\n", BadHeader),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5\r\n\r\nabc", BadContentLength),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1_0\r\n\r\nabc", BadContentLength),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: \xd9\xa3\r\n\r\nabc", BadContentLength),
    ],
)
def test_bad_header_sections(data: bytes, error: type[SipParseError]) -> None:
    with pytest.raises(error):
        parse_message(data)


def test_whitespace_only_continuation_line_adds_nothing() -> None:
    # found by the mutation fuzzer: "Privacy: n" LF SP CR LF used to give "n " (and "n" after a round trip)
    m = parse_message(OPTIONS.replace(b"Call-ID: c\r\n", b"Call-ID: c\n \r\n"))
    assert m.call_id == "c" and parse_message(to_bytes(m)).call_id == "c"


def test_no_content_length_on_datagram_takes_the_rest() -> None:
    m = parse_message(OPTIONS.replace(b"Content-Length: 0\r\n", b"") + b"body")
    assert m.body == b"body"


def test_error_messages_quote_the_fragment() -> None:
    with pytest.raises(BadStartLine) as exc:
        parse_message(b"SIP/2.0 4294967301 x\r\n\r\n")
    assert "4294967301" in str(exc.value) and exc.value.fragment == "SIP/2.0 4294967301 x"


# --- StreamFramer -------------------------------------------------------------------------------------

STREAM_MESSAGES = [OPTIONS, samples.REGISTER, samples.INVITE, samples.INVITE_AUTH]


def test_framer_whole_merged_and_keepalives() -> None:
    f = StreamFramer()
    stream = b"\r\n\r\n".join(STREAM_MESSAGES) + b"\r\n"
    assert f.feed(stream) == STREAM_MESSAGES
    assert f.buffered == 0
    assert f.feed(b"\r\n\r\n") == [] and f.buffered == 0


def test_framer_byte_by_byte() -> None:
    f = StreamFramer()
    out: list[bytes] = []
    for i in range(len(samples.INVITE)):
        out += f.feed(samples.INVITE[i : i + 1])
    assert out == [samples.INVITE]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    order=st.lists(st.integers(0, len(STREAM_MESSAGES) - 1), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 5000), max_size=12),
    pings=st.booleans(),
)
def test_framer_any_split_yields_the_same_messages(order: list[int], cuts: list[int], pings: bool) -> None:
    msgs = [STREAM_MESSAGES[i] for i in order]
    stream = (b"\r\n\r\n" if pings else b"").join(msgs)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    f = StreamFramer()
    out: list[bytes] = []
    for chunk in chunks:
        out += f.feed(chunk)
    assert out == msgs
    assert [parse_message(m) for m in out] == [parse_message(m) for m in msgs]


@pytest.mark.parametrize(
    "head",
    [
        b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n",
        b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n",
        b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n",
    ],
)
def test_framer_rejects_missing_bad_or_ambiguous_length(head: bytes) -> None:
    with pytest.raises(BadContentLength):
        StreamFramer().feed(head)


def test_framer_limits_header_section_and_body() -> None:
    with pytest.raises(BadHeader):
        StreamFramer(max_header=100).feed(b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"a" * 200)
    with pytest.raises(BadContentLength, match="out of range"):
        StreamFramer(max_body=1000).feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1001\r\n\r\n")


def test_framer_same_length_twice_is_fine() -> None:
    data = OPTIONS.replace(b"Content-Length: 0\r\n", b"Content-Length: 0\r\nl: 0\r\n")
    assert StreamFramer().feed(data) == [data]


# --- fuzzing: nothing but SipParseError may escape ---------------------------------------------------

SEEDS = [OPTIONS, samples.REGISTER, samples.INVITE, samples.WS_REGISTER]


def _parse_or_parse_error(data: bytes) -> None:
    try:
        m = parse_message(data)
    except SipParseError:
        return
    # Lazily parsed properties may refuse (SipParseError) but never crash.
    for attr in (
        "call_id",
        "cseq",
        "via",
        "from_",
        "to",
        "contacts",
        "route",
        "record_route",
        "content_type",
        "expires",
        "max_forwards",
        "sip_uri",
        "parsed_uri",
    ):
        try:
            getattr(m, attr)
        except SipParseError:
            pass
        except AttributeError:
            assert isinstance(m, Response)  # sip_uri / parsed_uri are request-only
    if isinstance(m, Request):
        uas_precheck(m)  # everything it reads was validated by the parser: it must not raise
    # Whatever parsed must serialise and parse again to the same message.
    again = parse_message(to_bytes(m))
    assert again.headers.without("Content-Length") == m.headers.without("Content-Length")
    assert again.body == m.body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    _parse_or_parse_error(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(
        st.tuples(
            st.integers(0, 4000),
            st.integers(0, 8),
            st.binary(max_size=6)
            | st.sampled_from(
                [b"\r\n", b" ", b";", b",", b"<", b">", b'"', b":", b"\\", b"%", b"\r\n ", b"\x00", b"9" * 30, b"="]
            ),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_fuzz_mutations_of_real_messages(seed: bytes, edits: list[tuple[int, int, bytes]]) -> None:
    data = seed
    for pos, cut, insert in edits:
        p = pos % (len(data) + 1)
        data = data[:p] + insert + data[p + cut :]
    _parse_or_parse_error(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.binary(max_size=200), max_size=8))
def test_fuzz_framer(chunks: list[bytes]) -> None:
    f = StreamFramer()
    try:
        for c in chunks:
            for m in f.feed(c):
                _parse_or_parse_error(m)
    except SipParseError:
        pass
