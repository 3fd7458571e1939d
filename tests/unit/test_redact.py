from __future__ import annotations

from pbxcheck.client import Exchange
from pbxcheck.redact import Redactor, curl_line


def test_redactor_longest_first() -> None:
    r = Redactor(["abc", "abcdef", ""])
    assert r.text("x abcdef abc") == "x [redacted] [redacted]"
    assert r.data({"senha": "abc", "n": [1, "abcdef"]}) == {"senha": "[redacted]", "n": [1, "[redacted]"]}
    assert r.bytes(b"abc") == b"[redacted]"


def test_exchange_describe_has_no_secret_and_a_curl() -> None:
    r = Redactor(["root1234", "tok-XYZ"])
    ex = Exchange(
        url="https://127.0.0.1:8443/api.php",
        body={"acao": "insert", "senha": "root1234", "token": "tok-XYZ"},
        source_ip="127.0.0.2",
        status_code=200,
        raw=b'["Status","OK"] tok-XYZ',
    )
    text = ex.describe(r, ca_file="/tmp/ca.pem")
    assert "root1234" not in text and "tok-XYZ" not in text
    assert "curl -sS -X POST --cacert /tmp/ca.pem --interface 127.0.0.2" in text
    assert "[redacted]" in text


def test_curl_line_quotes() -> None:
    line = curl_line("https://h/api.php", {"cliente": "O'Brien"}, redactor=Redactor([]), insecure=True)
    assert line.startswith("curl -sS -X POST -k ")
    assert "O'\"'\"'Brien" in line
