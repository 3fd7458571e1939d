"""Wrong credentials share nothing with the real ones; the delay rule reads medians, not one answer."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from pbxcheck.wrong import answers_delayed, wrong_like

SECRETS = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=8, max_size=64),
    st.text(alphabet=string.ascii_letters + string.digits + "-_!", min_size=6, max_size=40),
)


@given(SECRETS)
def test_a_wrong_value_has_the_shape_and_no_six_character_piece_of_the_secret(real: str) -> None:
    wrong = wrong_like(real)
    assert wrong != real and len(wrong) == len(real)
    if set(real) <= set("0123456789abcdef"):
        assert set(wrong) <= set("0123456789abcdef")
    # Drawn at random: a shared 6-character run is chance (about 1 in 16**6 per place), never derivation.
    shared = [real[i : i + 10] for i in range(len(real) - 9) if real[i : i + 10] in wrong]
    assert not shared


def test_one_changed_character_is_not_how_a_wrong_value_is_made() -> None:
    real = "0123456789abcdef0123456789abcdef"
    assert sum(a == b for a, b in zip(wrong_like(real), real, strict=True)) < 16


def test_delay_needs_the_later_median_three_times_slower_and_200_ms_more() -> None:
    assert not answers_delayed([0.01] * 7)
    assert not answers_delayed([0.01] * 8)
    assert not answers_delayed([0.01] * 7 + [5.0])  # one slow answer is no throttling
    assert not answers_delayed([0.01] * 4 + [0.05] * 4)  # 5x, but only 40 ms more
    assert answers_delayed([0.01] * 4 + [0.5] * 4)
