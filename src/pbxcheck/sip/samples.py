"""The vendor document's SIP examples ("Registrando dispositivos SIP", "Efetuando Chamadas"), repaired.

The document's traces are wrapped and partly garbled (AMB-9: ``aptime``, ``respor``, ``BSCRIBE``,
``;port;``). These are shape examples: the wrapping is undone, the garbling fixed, except that the
INVITE's SDP keeps the ``aptime:20`` line so that the SDP parser's tolerance is exercised. Used by
tests and the benchmark; handy for anyone needing a realistic device message.
"""

from __future__ import annotations

_CRLF = "\r\n"


def _msg(head: str, body: str = "") -> bytes:
    lines = head.strip("\n").split("\n")
    body_b = body.lstrip("\n").replace("\n", _CRLF).encode()
    lines.append(f"Content-Length: {len(body_b)}")
    return (_CRLF.join(lines) + _CRLF + _CRLF).encode() + body_b


REGISTER = _msg("""
REGISTER sip:widecloud.intelbras.com.br:7048;transport=udp SIP/2.0
Via: SIP/2.0/UDP 201.46.59.189:32670;rport;branch=z9hG4bKPjHbA6rc23vG1pyCdRRKXNzI0hJYMTWlmSp
Max-Forwards: 70
From: <sip:5545@widecloud.intelbras.com.br>;tag=wzBPCjLkJpGUxEIEkwrQgUHg6wfnek0YhAxx
To: <sip:5545@widecloud.intelbras.com.br>
Call-ID: pqCa151br258ne2EFAMi8VTicQXSwYp1O2J9
CSeq: 57949 REGISTER
User-Agent: Telephone_TIP125
Contact: <sip:5545@201.46.59.189:32670;transport=udp>;+sip.instance="<urn:uuid:80:8f:e8:64:d3>";+sip.model="Telephone_TIP125";+sip.version="2.0"
Expires: 90
Allow: PRACK, INVITE, ACK, BYE, CANCEL, UPDATE, REFER, OPTIONS, INFO, PUBLISH, REGISTER, SUBSCRIBE, NOTIFY, REFER
""")

INVITE_SDP = """
v=0
o=- 3818509910 3818509910 IN IP4 192.168.15.121
s=Intelbras
c=IN IP4 192.168.15.121
t=0 0
m=audio 6000 RTP/AVP 18 0 8 101
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
aptime:20
a=sendrecv
"""

_INVITE_HEAD = """
INVITE sip:944511712@widecloud.intelbras.com.br:7048;transport=udp SIP/2.0
Via: SIP/2.0/UDP 192.168.15.121:5060;rport;branch=z9hG4bKpJGmljPpvYDtGn6JkYqX8GfedXfQyR
Max-Forwards: 70
From: "RAMAL - 6961" <sip:6961@widecloud.intelbras.com.br>;tag=Uk8TfV1EBRsHU0fEDiZaoaFHzCtMuznZ
To: <sip:944511712@widecloud.intelbras.com.br>
Contact: <sip:6961@192.168.15.121:60185;transport=udp>;+sip.instance="<urn:uuid:80:8f:e:77:f5>";+sip.model="Telephone_TIP125";+sip.version="2.0"
Call-ID: ZlbycsRcVdqBAOyicF3xSZocQ8WNU3pRmQNO
CSeq: 14544 INVITE
Allow: PRACK, INVITE, ACK, BYE, CANCEL, UPDATE, REFER, OPTIONS, INFO, PUBLISH, REGISTER, SUBSCRIBE, NOTIFY, REFER
Supported: replaces
Privacy: none
Allow-Events: check-sync
User-Agent: Telephone_TIP125
Content-Type: application/sdp
"""

INVITE = _msg(_INVITE_HEAD, INVITE_SDP)

# The second INVITE of the document: same call, CSeq 14545, with digest credentials (realm xhand).
INVITE_AUTH = _msg(
    _INVITE_HEAD.replace("CSeq: 14544", "CSeq: 14545")
    .replace("z9hG4bKpJGmljPpvYDtGn6JkYqX8GfedXfQyR", "z9hG4bKpJJa5vvdLmT21JLJq2JmXfZ588N4KI5JtqHm")
    .replace(
        "Content-Type:",
        'Authorization: Digest username="6961", realm="xhand", nonce="1609521111/e77ebd577852317e85e4cfd479d3c3", '
        'uri="sip:944511712@widecloud.intelbras.com.br:7048;transport=udp", '
        'response="12c56ed0827828fe3e1c43211be2067c", algorithm=md5, cnonce="cf4nYIbocl8SsGhwsI3Xj2yVMmYStDx0zT", '
        'opaque="6c9b520111a7b797", qop=auth, nc=00000001\nContent-Type:',
    ),
    INVITE_SDP.replace("aptime:20", "a=ptime:20"),
)

# The sipML5 REGISTER over WSS from the document (its Contact line is cut off there; completed).
WS_REGISTER = _msg("""
REGISTER sip:widecloud.intelbras.com.br SIP/2.0
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKSvVpU7eMPfoScGy3Zk1Dry68HilZ9Tx;rport
From: "7777"<sip:7777@widecloud.intelbras.com.br>;tag=rzwwccxKfbnJ8AqDdoxi
To: "7777"<sip:7777@widecloud.intelbras.com.br>
Contact: "7777"<sips:7777@df7jal23ls0d.invalid;rtcweb-breaker=yes;transport=wss>;expires=50;click2call=no;+g.oma.sip-im;+audio;language="en,fr"
Call-ID: 4d0cf4f1-c9d8-3ab7-aa66-36fb55895776
CSeq: 5729 REGISTER
Max-Forwards: 70
""")
