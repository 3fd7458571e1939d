"""sip.ids: identifiers from a batched CSPRNG stay distinct across refills, threads and forks."""

from __future__ import annotations

import os
import re
import threading

from pbxcheck.sip import ids


def test_every_identifier_has_its_form() -> None:
    assert re.fullmatch(r"z9hG4bK[0-9a-f]{16}", ids.new_branch())
    assert re.fullmatch(r"[0-9a-f]{16}", ids.new_tag())
    assert re.fullmatch(r"[0-9a-f]{24}", ids.new_call_id())
    assert re.fullmatch(r"[0-9a-f]{16}", ids.new_cnonce())
    assert re.fullmatch(r"[0-9a-f]{12}\.invalid", ids.new_instance_host())
    assert [len(ids.random_hex(n)) for n in (1, 8, 9, 12, ids.POOL_BYTES)] == [2, 16, 18, 24, 2 * ids.POOL_BYTES]


def test_no_value_is_handed_out_twice_across_pool_refills() -> None:
    draws = 20 * ids.POOL_BYTES // ids.CHUNK  # twenty refills
    values = {ids.new_tag() for _ in range(draws)}
    assert len(values) == draws


def test_threads_never_share_a_slice() -> None:
    out: list[list[str]] = [[] for _ in range(4)]

    def draw(bucket: list[str]) -> None:
        for _ in range(5000):
            bucket.append(ids.new_branch())

    threads = [threading.Thread(target=draw, args=(b,)) for b in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [v for b in out for v in b]
    assert len(set(every)) == len(every) == 20000


def test_a_forked_child_does_not_repeat_its_parents_unread_bytes() -> None:
    ids.new_tag()  # a pool with unread bytes in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its next tags and leave at once
        os.close(read)
        os.write(write, "".join(ids.new_tag() for _ in range(8)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        child = f.read().decode()
    os.waitpid(pid, 0)
    parent = "".join(ids.new_tag() for _ in range(8))
    assert len(child) == len(parent) == 128
    assert child != parent
