"""Pillow's decode + resize of the same JPEGs, for `npm run -s bench -- decode` (tests/bench/decode.bench.ts).

One process, one thread: reads every file into memory first, then decodes image i = file i mod n, converts it to
RGB and squashes it to size x size with the bicubic filter, and takes the bytes, `count` times. Prints one JSON
object: {"images", "seconds", "cpu_seconds", "cpu_ms_per_image", "images_per_second", "size", "filter", "pillow"}
(cpu_seconds: this process's CPU time over the timed loop, which other jobs on the machine do not inflate).
Usage: python3 decode_pillow.py <size> <count> <file>...
"""

import io
import json
import sys
import time

from PIL import Image, __version__ as pillow_version


def main() -> None:
    size, count = int(sys.argv[1]), int(sys.argv[2])
    paths = sys.argv[3:]
    if not paths:
        sys.exit("decode_pillow.py: no JPEG files given")
    blobs = []
    for path in paths:
        with open(path, "rb") as f:
            blobs.append(f.read())
    # Warm-up outside the timing, as the browser's decoders are started before theirs.
    Image.open(io.BytesIO(blobs[0])).convert("RGB").resize((size, size), Image.BICUBIC).tobytes()
    started = time.perf_counter()
    cpu_started = time.process_time()
    for i in range(count):
        image = Image.open(io.BytesIO(blobs[i % len(blobs)])).convert("RGB")
        image.resize((size, size), Image.BICUBIC).tobytes()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "images": count,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "cpu_ms_per_image": 1000 * cpu_seconds / count,
                "images_per_second": count / seconds,
                "size": size,
                "filter": "bicubic",
                "pillow": pillow_version,
            }
        )
    )


if __name__ == "__main__":
    main()
