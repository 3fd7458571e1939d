"""What every locustfile shares: the target (from $PBXCHECK_TARGET) and a TLS context for gevent."""

from __future__ import annotations

import itertools
import os
import uuid
from functools import lru_cache

from pbxcheck.target import Target, load_target

_seq = itertools.count(1)
RUN_ID = os.environ.get("PBXCHECK_RUN_ID") or uuid.uuid4().hex[:8]


@lru_cache(maxsize=1)
def target() -> Target:
    path = os.environ.get("PBXCHECK_TARGET")
    if not path:
        raise RuntimeError("PBXCHECK_TARGET is not set: run scenarios through `pbxcheck load`")
    return load_target(path)


def ssl_context_factory():  # type: ignore[no-untyped-def]
    import gevent.ssl

    t = target()
    if t.insecure:
        ctx = gevent.ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = gevent.ssl.CERT_NONE
        return ctx
    return gevent.ssl.create_default_context(cafile=t.ca_file)


def credentials() -> dict[str, str]:
    t = target()
    return {"login": t.login, "senha": t.senha, "token": t.token}


def unique(prefix: str) -> str:
    """A value unique to this run and this process, for finding our own rows afterwards."""
    return f"{prefix}-{RUN_ID}-{os.getpid()}-{next(_seq)}"
