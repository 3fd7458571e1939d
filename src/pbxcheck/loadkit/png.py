"""A tiny PNG line chart (zlib + struct, no plotting library): throughput and latency over time.

Two panels sharing the time axis: requests/s (answers per second, failures in red) above, latency
p50/p99/max in ms below. Labels use a 3x5 pixel font covering the few characters they need. A plotting
library (matplotlib: ~40 MB with numpy) would be the only heavy dependency of pbxcheck for one picture.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

Color = tuple[int, int, int]
WHITE, GREY, BLACK = (255, 255, 255), (215, 215, 215), (40, 40, 40)
BLUE, RED, GREEN, ORANGE = (31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14)

_FONT = {  # 3 columns x 5 rows, row-major bits
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    ".": "000000000000010",
    "/": "001001010100100",
    " ": "000000000000000",
    "-": "000000111000000",
    "k": "100101110101101",
    "r": "000110101100100",
    "e": "000111111100111",
    "q": "000111101111001",
    "s": "000111110011110",
    "m": "000111111101101",
    "p": "000111101111100",
    "a": "000011101101011",
    "x": "000101010101101",
    "t": "010111010010011",
    "i": "010000010010010",
    "l": "110010010010111",
    "u": "000101101101111",
    "f": "011100110100100",
    "y": "000101111001111",
    "n": "000110101101101",
    "c": "000111100100111",
    "o": "000111101101111",
    "d": "001001111101111",
    "w": "000101101111101",
    "g": "000111101011110",
    "h": "100100111101101",
    "(": "010100100100010",
    ")": "010001001001010",
    "%": "101001010100101",
    ":": "000010000010000",
}


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.px = bytearray(bytes(WHITE) * (width * height))

    def dot(self, x: int, y: int, c: Color) -> None:
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i : i + 3] = bytes(c)

    def line(self, x0: int, y0: int, x1: int, y1: int, c: Color) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for s in range(steps + 1):
            self.dot(round(x0 + (x1 - x0) * s / steps), round(y0 + (y1 - y0) * s / steps), c)

    def text(self, x: int, y: int, s: str, c: Color = BLACK, scale: int = 2) -> None:
        for ch in s.lower():
            bits = _FONT.get(ch, _FONT[" "])
            for i, b in enumerate(bits):
                if b == "1":
                    for dx in range(scale):
                        for dy in range(scale):
                            self.dot(x + (i % 3) * scale + dx, y + (i // 3) * scale + dy, c)
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3 : (y + 1) * self.w * 3]) for y in range(self.h))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b"")
        )


def _fmt(v: float) -> str:
    return f"{v / 1000:.1f}k" if v >= 10000 else (f"{v:.0f}" if v >= 10 else f"{v:.2f}")


def _panel(
    cv: Canvas,
    top: int,
    height: int,
    xs: Sequence[float],
    series: list[tuple[str, Color, list[float]]],
    unit: str,
    left: int = 70,
    right: int = 20,
) -> None:
    width = cv.w - left - right
    ymax = max([max(v, default=0.0) for _, _, v in series] + [1e-9]) * 1.1
    for frac in (0.0, 0.5, 1.0):  # grid and y labels
        y = top + height - round(frac * height)
        cv.line(left, y, left + width, y, GREY)
        cv.text(4, y - 5, _fmt(ymax * frac))
    cv.line(left, top, left, top + height, BLACK)
    cv.text(left + 6, top - 14, unit)
    lx = left + 8 + len(unit) * 8 + 24
    x_span = (xs[-1] - xs[0]) or 1.0
    for name, color, values in series:
        pts = [
            (left + round((x - xs[0]) / x_span * width), top + height - round(v / ymax * height))
            for x, v in zip(xs, values, strict=True)
        ]
        for (xa, ya), (xb, yb) in zip(pts, pts[1:], strict=False):
            cv.line(xa, ya, xb, yb, color)
        if len(pts) == 1:
            cv.dot(*pts[0], color)
        cv.line(lx, top - 9, lx + 14, top - 9, color)
        cv.text(lx + 18, top - 14, name, color)
        lx += 18 + len(name) * 8 + 20


def timeline_png(timeline: Sequence[Sequence[float]], width: int = 900, height: int = 520) -> bytes:
    """``timeline`` rows: [epoch second, count, failures, p50 ms, p99 ms, max ms]."""
    cv = Canvas(width, height)
    rows = sorted(timeline, key=lambda r: r[0]) or [[0, 0, 0, 0, 0, 0]]
    t0 = rows[0][0]
    xs = [r[0] - t0 for r in rows]
    _panel(
        cv,
        30,
        190,
        xs,
        [("answers/s", BLUE, [r[1] - r[2] for r in rows]), ("failed/s", RED, [r[2] for r in rows])],
        "req/s",
    )
    _panel(
        cv,
        280,
        190,
        xs,
        [
            ("p50", GREEN, [r[3] for r in rows]),
            ("p99", ORANGE, [r[4] for r in rows]),
            ("max", RED, [r[5] for r in rows]),
        ],
        "ms",
    )
    cv.text(70, height - 22, f"time (s) 0 - {xs[-1]:.0f}")
    return cv.png()
