"""GSM 06.10 full-rate audio, the format of the central's recordings (REC-1).

A frame is 33 bytes: the 4-bit signature 0xD, then 260 bits of parameters (8 LAR coefficients,
then per 5 ms sub-frame: LTP lag and gain, grid position, block maximum and 13 pulses). Every bit
pattern after the signature decodes, so any packing of in-range parameters is a valid frame.
The central does not store audio: a recording is generated from its call record on request, a
low tone whose size is exactly the record's ``tamanho_gravacao``.
"""

from __future__ import annotations

from ..contract import GSM_FRAME_BYTES, GSM_FRAMES_PER_SECOND

SIGNATURE = 0xD
_LAR_BITS = (6, 6, 5, 5, 4, 4, 3, 3)
_SUB_BITS = (7, 2, 2, 6) + (3,) * 13  # Nc, bc, Mc, xmaxc, xMc[13]


def pack_frame(lar: tuple[int, ...], subframes: tuple[tuple[int, ...], ...]) -> bytes:
    """Pack parameters (8 LARc, 4 × (Nc, bc, Mc, xmaxc, 13 × xMc)) into one 33-byte frame."""
    if len(lar) != 8 or len(subframes) != 4 or any(len(s) != 17 for s in subframes):
        raise ValueError("a GSM frame has 8 LAR values and 4 sub-frames of 17 values")
    bits, value = 4, SIGNATURE
    fields = list(zip(_LAR_BITS, lar, strict=True)) + [f for s in subframes for f in zip(_SUB_BITS, s, strict=True)]
    for width, v in fields:
        if not 0 <= v < (1 << width):
            raise ValueError(f"GSM parameter {v} does not fit in {width} bits")
        value = (value << width) | v
        bits += width
    assert bits == GSM_FRAME_BYTES * 8
    return value.to_bytes(GSM_FRAME_BYTES, "big")


def _tone_frames() -> tuple[bytes, ...]:
    # Mid-range LARs (a flat spectrum), a lag of 40 samples (200 Hz) and a small alternating pulse
    # train: an audible low buzz rather than digital silence, so a player shows a waveform.
    lar = (32, 32, 16, 16, 8, 8, 4, 4)
    frames = []
    for phase in range(2):
        sub = tuple((40, 2, phase, 20, *((3 + (i + phase) % 3) for i in range(13))) for _ in range(4))
        frames.append(pack_frame(lar, sub))
    return tuple(frames)


TONE_FRAMES = _tone_frames()
_PAIR = b"".join(TONE_FRAMES)


def size_for_seconds(seconds: float) -> int:
    """tamanho_gravacao for a recording of ``seconds``: whole frames of 20 ms."""
    return max(1, round(seconds * GSM_FRAMES_PER_SECOND)) * GSM_FRAME_BYTES


def audio(size: int) -> bytes:
    """A recording of exactly ``size`` bytes; ``size`` must be a multiple of 33."""
    if size < 0 or size % GSM_FRAME_BYTES:
        raise ValueError(f"a GSM file is whole 33-byte frames; {size} is not")
    frames = size // GSM_FRAME_BYTES
    return _PAIR * (frames // 2) + TONE_FRAMES[0] * (frames % 2)


def is_gsm(data: bytes) -> bool:
    """Whole 33-byte frames, each starting with the 0xD signature."""
    if not data or len(data) % GSM_FRAME_BYTES:
        return False
    return all(data[i] >> 4 == SIGNATURE for i in range(0, len(data), GSM_FRAME_BYTES))


def not_gsm(size: int) -> bytes:
    """The "recording-not-gsm" fault: a WAV/PCM-looking file of the same size."""
    head = b"RIFF" + (max(size - 8, 0)).to_bytes(4, "little") + b"WAVEfmt "
    return (head + b"\x00" * size)[:size]
