"""The central's nonces: <epoch>/<hex>, bound to the source IP, a lifetime, a strictly growing nc."""

from __future__ import annotations

import re

from pbxcheck.central.sip.admission import NonceAuthority, NonceState


class Clock:
    def __init__(self, t: float = 1_609_521_111.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_nonce_shape_and_binding_to_the_source_ip():
    clock = Clock()
    na = NonceAuthority("xhand", lifetime=30, clock=clock)
    n = na.issue("201.46.59.189")
    assert re.fullmatch(r"1609521111/[0-9a-f]{40}", n)  # 64-bit salt + 96-bit MAC
    # many challenges in one second all differ (a 32-bit salt repeated now and then at load rates)
    assert len({na.issue("201.46.59.189") for _ in range(200_000)} | {n}) == 200_001
    assert na.check(n, "201.46.59.189") is NonceState.VALID
    assert na.check(n, "72.44.22.20") is NonceState.INVALID
    assert na.check(n[:-1] + ("0" if n[-1] != "0" else "1"), "201.46.59.189") is NonceState.INVALID
    assert na.check("garbage", "201.46.59.189") is NonceState.INVALID
    assert NonceAuthority("xhand", clock=clock).check(n, "201.46.59.189") is NonceState.INVALID  # another secret


def test_lifetime_makes_a_nonce_stale():
    clock = Clock()
    na = NonceAuthority("xhand", lifetime=30, clock=clock)
    n = na.issue("127.0.0.1")
    clock.t += 30
    assert na.check(n, "127.0.0.1") is NonceState.VALID
    clock.t += 1.5
    assert na.check(n, "127.0.0.1") is NonceState.STALE


def test_nc_must_grow():
    na = NonceAuthority("xhand", clock=Clock())
    n = na.issue("127.0.0.1")
    assert na.accept_nc(n, 1) and na.accept_nc(n, 2) and na.accept_nc(n, 5)
    assert not na.accept_nc(n, 5) and not na.accept_nc(n, 3)
    assert not na.accept_nc(na.issue("127.0.0.1"), 0)
    assert na.accept_nc(n, 5, replay_allowed=True)


def test_nc_table_is_bounded():
    clock = Clock()
    na = NonceAuthority("xhand", clock=clock, max_tracked=100)
    for _ in range(1000):
        assert na.accept_nc(na.issue("127.0.0.1"), 1)
        clock.t += 0.01
    assert len(na._nc) <= 100
