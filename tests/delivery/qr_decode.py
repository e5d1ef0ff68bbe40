"""A small QR decoder for the tests: reads the SVG segno writes back into a module matrix and
decodes it (format info, unmasking, de-interleaving, numeric/alphanumeric/byte segments).

Independent of segno's encoder: it follows ISO/IEC 18004 (function patterns, zigzag placement,
masks, block structure) for versions 1 to 10, enough for a link. No error correction: a code
fresh from the encoder has no errors, and any wrong module makes the decode fail or differ.
"""

import re
import xml.etree.ElementTree as ET

# [level][version] for versions 1..10 (index 0 unused): ISO/IEC 18004 table 9.
ECC_PER_BLOCK = {
    "L": [0, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18],
    "M": [0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26],
    "Q": [0, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24],
    "H": [0, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28],
}
BLOCKS = {
    "L": [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4],
    "M": [0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5],
    "Q": [0, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8],
    "H": [0, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8],
}
FORMAT_LEVEL = {1: "L", 0: "M", 3: "Q", 2: "H"}
ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
MASKS = [
    lambda x, y: (x + y) % 2 == 0,
    lambda x, y: y % 2 == 0,
    lambda x, y: x % 3 == 0,
    lambda x, y: (x + y) % 3 == 0,
    lambda x, y: (x // 3 + y // 2) % 2 == 0,
    lambda x, y: x * y % 2 + x * y % 3 == 0,
    lambda x, y: (x * y % 2 + x * y % 3) % 2 == 0,
    lambda x, y: ((x + y) % 2 + x * y % 3) % 2 == 0,
]


class QRDecodeError(Exception):
    pass


def svg_matrix(svg: str) -> list[list[bool]]:
    """The dark modules of a segno SVG (one path of horizontal runs), quiet zone removed."""
    root = ET.fromstring(svg)  # noqa: S314 - our own output, in a test
    paths = [el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "path"]
    if len(paths) != 1:
        raise QRDecodeError(f"expected one path, found {len(paths)}")
    tokens = re.findall(r"[MmHhVv]|-?\d+(?:\.\d+)?", paths[0].get("d", ""))
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    i = 0
    while i < len(tokens):
        command = tokens[i]
        if command in "Mm":
            dx, dy = float(tokens[i + 1]), float(tokens[i + 2])
            x, y = (dx, dy) if command == "M" else (x + dx, y + dy)
            i += 3
        elif command in "Hh":
            end = float(tokens[i + 1]) if command == "H" else x + float(tokens[i + 1])
            for column in range(int(x), int(end)):
                dark.add((column, int(y)))
            x = end
            i += 2
        else:
            raise QRDecodeError(f"unexpected path command {command!r}")
    if not dark:
        raise QRDecodeError("no dark modules")
    left = min(c for c, _ in dark)
    top = min(r for _, r in dark)
    size = max(c for c, _ in dark) - left + 1
    if size != max(r for _, r in dark) - top + 1:
        raise QRDecodeError("not square")
    return [[(c + left, r + top) in dark for c in range(size)] for r in range(size)]


def decode_matrix(matrix: list[list[bool]]) -> str:
    size = len(matrix)
    version = (size - 17) // 4
    if size != 17 + 4 * version or not 1 <= version <= 10:
        raise QRDecodeError(f"unsupported size {size}")
    level, mask = _format(matrix)
    function = _function_modules(size, version)
    bits = []
    for right in range(size - 1, 0, -2):
        if right <= 6:
            right -= 1
        upward = ((right + 1) & 2) == 0
        for vert in range(size):
            y = size - 1 - vert if upward else vert
            for x in (right, right - 1):
                if not function[y][x]:
                    bits.append(matrix[y][x] ^ MASKS[mask](x, y))
    codewords = [
        int("".join("1" if b else "0" for b in bits[i : i + 8]), 2)
        for i in range(0, len(bits) // 8 * 8, 8)
    ]
    return _segments(_data_codewords(codewords, version, level), version)


def _format(matrix) -> tuple[str, int]:
    positions = [(8, i) for i in range(6)] + [(8, 7), (8, 8), (7, 8)]
    positions += [(14 - i, 8) for i in range(9, 15)]
    raw = sum(matrix[y][x] << i for i, (x, y) in enumerate(positions))
    # The one valid format word nearest to what was read (BCH(15,5), so at most 3 errors).
    best = min(range(32), key=lambda data: bin(_format_word(data) ^ raw).count("1"))
    if bin(_format_word(best) ^ raw).count("1") > 3:
        raise QRDecodeError("unreadable format information")
    return FORMAT_LEVEL[best >> 3], best & 7


def _format_word(data: int) -> int:
    rem = data
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * 0x537)
    return ((data << 10) | rem) ^ 0x5412


def _alignment_positions(version: int) -> list[int]:
    if version == 1:
        return []
    count = version // 7 + 2
    step = (version * 4 + count * 2 + 1) // (count * 2 - 2) * 2
    size = 17 + 4 * version
    positions = [size - 7 - i * step for i in range(count - 1)]
    return [6, *reversed(positions)]


def _function_modules(size: int, version: int) -> list[list[bool]]:
    function = [[False] * size for _ in range(size)]

    def mark(x0, y0, width, height):
        for y in range(max(0, y0), min(size, y0 + height)):
            for x in range(max(0, x0), min(size, x0 + width)):
                function[y][x] = True

    mark(0, 0, 9, 9)  # finder, separator, format
    mark(size - 8, 0, 8, 9)
    mark(0, size - 8, 9, 8)
    mark(0, 6, size, 1)  # timing
    mark(6, 0, 1, size)
    centers = _alignment_positions(version)
    for cy in centers:
        for cx in centers:
            corner = (cx, cy) in {
                (centers[0], centers[0]),
                (centers[0], centers[-1]),
                (centers[-1], centers[0]),
            }
            if not corner:
                mark(cx - 2, cy - 2, 5, 5)
    if version >= 7:
        mark(size - 11, 0, 3, 6)
        mark(0, size - 11, 6, 3)
    return function


def _data_codewords(codewords: list[int], version: int, level: str) -> list[int]:
    blocks = BLOCKS[level][version]
    ecc = ECC_PER_BLOCK[level][version]
    short_count = blocks - len(codewords) % blocks
    short_len = len(codewords) // blocks  # data + ecc of a short block
    data_lens = [short_len - ecc + (0 if j < short_count else 1) for j in range(blocks)]
    data: list[list[int]] = [[] for _ in range(blocks)]
    position = 0
    for i in range(max(data_lens)):
        for j in range(blocks):
            if i < data_lens[j]:
                data[j].append(codewords[position])
                position += 1
    return [cw for block in data for cw in block]


def _segments(codewords: list[int], version: int) -> str:
    bits = "".join(f"{cw:08b}" for cw in codewords)
    group = 0 if version <= 9 else 1
    count_bits = {1: (10, 12), 2: (9, 11), 4: (8, 16)}
    out, i = [], 0

    def take(n):
        nonlocal i
        value = int(bits[i : i + n], 2)
        i += n
        return value

    while i + 4 <= len(bits):
        mode = take(4)
        if mode == 0:
            break
        if mode == 7:  # ECI: byte segments that follow are UTF-8 in practice
            take(8)
            continue
        if mode not in count_bits:
            raise QRDecodeError(f"unsupported mode {mode}")
        count = take(count_bits[mode][group])
        if mode == 4:
            out.append(bytes(take(8) for _ in range(count)).decode("latin-1"))
        elif mode == 2:
            chars = []
            for _ in range(count // 2):
                pair = take(11)
                chars += [ALPHANUMERIC[pair // 45], ALPHANUMERIC[pair % 45]]
            if count % 2:
                chars.append(ALPHANUMERIC[take(6)])
            out.append("".join(chars))
        else:
            digits = []
            for _ in range(count // 3):
                digits.append(f"{take(10):03d}")
            rest = count % 3
            if rest:
                digits.append(f"{take(4 if rest == 1 else 7):0{rest}d}")
            out.append("".join(digits))
    return "".join(out)


def decode_svg(svg: str) -> str:
    """The text a segno SVG QR code holds."""
    return decode_matrix(svg_matrix(svg))
