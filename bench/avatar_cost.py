"""What one avatar upload costs: CPU time and peak memory of `accounts.avatars.avatar_reencode`.

    .venv/bin/python bench/avatar_cost.py [--side 4096] [--max-pixels 16777216]

The image is the cheapest to send and the dearest to decode: an RGBA PNG of transparent pixels (64 KB
for 4096 × 4096). Each measurement runs in a fresh process, so the peak resident size is this upload's
alone (after a warm-up upload: a worker has loaded Pillow's plugins). docs/security.md quotes the results
(finding 13).
"""

import argparse
import os
import resource
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def transparent_png(side: int) -> bytes:
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0))
    row = bytes(1 + side * 4)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row * min(512, side - start)) for start in range(0, side, 512))
    return b"\x89PNG\r\n\x1a\n" + header + _chunk(b"IDAT", data + compressor.flush()) + _chunk(b"IEND", b"")


def measure(side: int, max_pixels: int) -> str:
    """One upload, in this process: what happened, CPU milliseconds, peak resident growth in MB."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.avatars import AvatarError, avatar_reencode

    settings.AVATAR_MAX_PIXELS = max_pixels
    avatar_reencode(SimpleUploadedFile("warm.png", transparent_png(64)))  # a worker has Pillow's plugins loaded
    data = transparent_png(side)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_before = time.process_time()
    try:
        avatar_reencode(SimpleUploadedFile("avatar.png", data, content_type="image/png"))
        outcome = "accepted"
    except AvatarError:
        outcome = "refused"
    cpu_ms = (time.process_time() - cpu_before) * 1000
    rss_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    return f"{side} x {side} RGBA PNG, {len(data) / 1024:.0f} KB, limit {max_pixels:,} px: {outcome}, " + (
        f"{cpu_ms:.0f} ms CPU, +{rss_mb:.0f} MB peak"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, action="append", help="image side in pixels (repeatable)")
    parser.add_argument("--max-pixels", type=int, default=None, help="AVATAR_MAX_PIXELS (default: the setting)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sides = args.side or [4096, 2048]
    if args.child:
        print(measure(sides[0], args.max_pixels))
        return
    max_pixels = args.max_pixels
    if max_pixels is None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        import django

        django.setup()
        from django.conf import settings

        max_pixels = settings.AVATAR_MAX_PIXELS
    for side in sides:
        for _ in range(args.runs):
            command = [sys.executable, __file__, "--child", "--side", str(side), "--max-pixels", str(max_pixels)]
            print(subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip())


if __name__ == "__main__":
    main()
