"""HTTP Digest for SIP (RFC 3261 22.4, RFC 2617, RFC 7616): challenges, credentials, responses.

Pure functions over strings; nonce bookkeeping (lifetime, replay, nc) belongs to whoever issues
nonces. ``verify`` compares in constant time.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass

from pbxcheck.sip.errors import BadHeader, DigestError
from pbxcheck.sip.grammar import quote
from pbxcheck.sip.headers import parse_auth_params
from pbxcheck.sip.ids import new_cnonce

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
ALGORITHMS = ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess")


def _canonical_algorithm(name: str | None) -> str:
    """``md5`` (the document's device sends lower case) -> ``MD5``; absent means MD5 (RFC 2617 3.2.1)."""
    if name is None:
        return "MD5"
    for a in ALGORITHMS:
        if a.lower() == name.lower():
            return a
    raise DigestError(f"unsupported digest algorithm {name!r}")


def _h(algorithm: str, text: str) -> str:
    base = algorithm.removesuffix("-sess")
    return _HASHES[base](text.encode("utf-8")).hexdigest()


def _parse(value: str, what: str) -> dict[str, str]:
    try:
        scheme, params = parse_auth_params(value, BadHeader)
    except BadHeader as exc:
        raise DigestError(f"malformed {what}: {exc.reason}") from None
    if scheme.lower() != "digest":
        # RFC 4475 regaut01: an unknown scheme is not an error of the message; the registrar
        # ignores the credentials and challenges.
        raise DigestError(f"{what} uses scheme {scheme!r}, not Digest")
    return params


def _need(params: dict[str, str], name: str, what: str) -> str:
    if name not in params:
        raise DigestError(f"{what} lacks {name}")
    return params[name]


@dataclass(frozen=True, slots=True)
class Challenge:
    """A WWW-Authenticate / Proxy-Authenticate value."""

    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ("auth",)
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> Challenge:
        p = _parse(value, "challenge")
        qop = tuple(q.strip() for q in p["qop"].split(",") if q.strip()) if "qop" in p else ()
        return cls(
            realm=_need(p, "realm", "challenge"),
            nonce=_need(p, "nonce", "challenge"),
            opaque=p.get("opaque"),
            algorithm=_canonical_algorithm(p.get("algorithm")),
            qop=qop,
            stale=p.get("stale", "").lower() == "true",
        )

    def __str__(self) -> str:
        # challenge = "Digest" LWS digest-cln *(COMMA digest-cln); realm, nonce, opaque, qop quoted
        parts = [f"realm={quote(self.realm)}", f"nonce={quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.stale:
            parts.append("stale=TRUE")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={quote(','.join(self.qop))}")
        return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Credentials:
    """An Authorization / Proxy-Authorization value."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: str | None = None

    @classmethod
    def parse(cls, value: str) -> Credentials:
        p = _parse(value, "credentials")
        w = "credentials"
        qop = p.get("qop")
        creds = cls(
            username=_need(p, "username", w),
            realm=_need(p, "realm", w),
            nonce=_need(p, "nonce", w),
            uri=_need(p, "uri", w),
            response=_need(p, "response", w).lower(),
            algorithm=_canonical_algorithm(p.get("algorithm")),
            cnonce=p.get("cnonce"),
            opaque=p.get("opaque"),
            qop=qop,
            nc=p.get("nc"),
        )
        if qop is not None and (creds.cnonce is None or creds.nc is None):
            raise DigestError("credentials with qop lack cnonce or nc")
        return creds

    def __str__(self) -> str:
        parts = [
            f"username={quote(self.username)}",
            f"realm={quote(self.realm)}",
            f"nonce={quote(self.nonce)}",
            f"uri={quote(self.uri)}",
            f"response={quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.cnonce is not None:
            parts.append(f"cnonce={quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.qop is not None:
            parts += [f"qop={self.qop}", f"nc={self.nc}"]
        return "Digest " + ", ".join(parts)


def compute_ha1(algorithm: str, username: str, realm: str, password: str, nonce: str = "", cnonce: str = "") -> str:
    """H(username:realm:password), and for -sess H(that:nonce:cnonce) (RFC 7616 3.4.2)."""
    algorithm = _canonical_algorithm(algorithm)
    ha1 = _plain_ha1(algorithm, username, realm, password)
    if algorithm.endswith("-sess"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    return ha1


@functools.lru_cache(maxsize=4096)
def _plain_ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """H(username:realm:password) for a canonical algorithm: the same for every challenge of one
    realm (a load generator's registrations, a registrar's verifications), so hashed once per account."""
    return _h(algorithm, f"{username}:{realm}:{password}")


def compute_response(
    *,
    algorithm: str = "MD5",
    username: str,
    realm: str,
    password: str | None = None,
    ha1: str | None = None,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The request-digest (RFC 2617 3.2.2.1, RFC 7616 3.4.1). Give ``password`` or a stored ``ha1``
    (the plain H(username:realm:password), -sess applied here). qop ``auth``, ``auth-int`` or None."""
    algorithm = _canonical_algorithm(algorithm)
    if ha1 is None:
        if password is None:
            raise DigestError("compute_response needs password or ha1")
        ha1 = _plain_ha1(algorithm, username, realm, password)
    if algorithm.endswith("-sess"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce or ''}")
    if qop == "auth-int":
        base = algorithm.removesuffix("-sess")
        ha2 = _h(algorithm, f"{method}:{uri}:{_HASHES[base](body).hexdigest()}")
    else:
        ha2 = _h(algorithm, f"{method}:{uri}")
    if qop is None:
        return _h(algorithm, f"{ha1}:{nonce}:{ha2}")
    if qop not in ("auth", "auth-int"):
        raise DigestError(f"unsupported qop {qop!r}")
    return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def build_authorization(
    challenge: Challenge,
    username: str,
    password: str,
    method: str,
    uri: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> Credentials:
    """Credentials answering ``challenge`` (qop=auth when offered, else the RFC 2069 form)."""
    qop = "auth" if "auth" in challenge.qop else None
    if qop is None and challenge.qop:
        raise DigestError(f"no supported qop in {challenge.qop}")
    cnonce = cnonce if cnonce is not None else new_cnonce()
    nc_s = f"{nc:08x}"
    # -sess mixes the cnonce into HA1 even without qop (RFC 2617 3.2.2.2)
    used_cnonce = cnonce if qop or challenge.algorithm.endswith("-sess") else None
    response = compute_response(
        algorithm=challenge.algorithm,
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_s if qop else None,
        cnonce=used_cnonce,
    )
    return Credentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        cnonce=used_cnonce,
        opaque=challenge.opaque,
        qop=qop,
        nc=nc_s if qop else None,
    )


def verify(
    credentials: Credentials,
    password: str | None,
    method: str,
    *,
    ha1: str | None = None,
    realm: str | None = None,
    body: bytes = b"",
) -> bool:
    """Whether ``credentials`` were computed with this password (or stored ``ha1``) for ``method``.

    Constant-time in the response comparison. Nonce validity, nc replay and the uri/Request-URI
    match are the caller's (it owns the nonce store). A wrong realm is simply a failure.
    """
    if realm is not None and credentials.realm != realm:
        return False
    try:
        expected = compute_response(
            algorithm=credentials.algorithm,
            username=credentials.username,
            realm=credentials.realm,
            password=password,
            ha1=ha1,
            method=method,
            uri=credentials.uri,
            nonce=credentials.nonce,
            qop=credentials.qop,
            nc=credentials.nc,
            cnonce=credentials.cnonce,
            body=body,
        )
    except DigestError:
        return False
    return hmac.compare_digest(expected.encode(), credentials.response.encode())


def challenge_header(status: int) -> str:
    """Which header carries the challenge in a 401 / 407."""
    return "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"


def credentials_header(status: int) -> str:
    """Which header carries the answer to a 401 / 407."""
    return "Proxy-Authorization" if status == 407 else "Authorization"
