"""A minimal PDF reader for tests: structure checks and decoded page streams."""

import base64
import re
import zlib

STREAM = re.compile(rb"<<(.*?)>>\s*stream\r?\n(.*?)\r?\n?endstream", re.DOTALL)


def check_structure(data: bytes) -> int:
    """Assert the header, trailer and cross-reference table; return object count.

    Every in-use cross-reference entry must point at the start of its object.
    """
    assert data.startswith(b"%PDF-1.")
    assert data.rstrip().endswith(b"%%EOF")
    offset = int(re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", data).group(1))
    assert data[offset : offset + 4] == b"xref"
    header = re.match(rb"xref\s+(\d+) (\d+)\s+", data[offset:])
    first, count = int(header.group(1)), int(header.group(2))
    entries = data[offset + header.end() :].split(b"\n")[:count]
    for number, entry in enumerate(entries, start=first):
        position, _, kind = entry.strip().split(b" ")
        if kind == b"n":
            expected = f"{number} 0 obj".encode()
            assert data[int(position) :].startswith(expected), number
    return count


def decode_streams(data: bytes) -> list[bytes]:
    """Return every stream's content, undoing ASCII85 and Flate encoding."""
    decoded = []
    for dictionary, raw in STREAM.findall(data):
        content = raw
        if b"/ASCII85Decode" in dictionary:
            # ReportLab ends ASCII85 data with the "~>" end-of-data marker.
            content = base64.a85decode(content.strip().removesuffix(b"~>"))
        if b"/FlateDecode" in dictionary:
            content = zlib.decompress(content)
        decoded.append(content)
    return decoded
