"""Time to fit one 12-megapixel phone photo for every platform, against a plain Pillow
open + save of the same photo in the same run (the floor any re-encoding pays).

    .venv/bin/python -m bench.fit_images [--repeat 3]

The photo (4000×3000, JPEG quality 92, EXIF orientation 6 and a GPS position, like a phone's)
is made in memory: smooth colour fields with fine noise, so it compresses like a photo rather
than like flat colour or pure noise. Each figure is the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import io
import random
import time
from collections.abc import Callable

from PIL import Image, ImageFilter

from scheduler.fitting import fit_image
from scheduler.platforms import PLATFORMS, adapter_class
from tests.helpers import GPS


def photo(width: int = 4000, height: int = 3000) -> bytes:
    rnd = random.Random(12)
    base = Image.frombytes("RGB", (40, 30), rnd.randbytes(40 * 30 * 3)).resize((width, height), Image.Resampling.BICUBIC)
    grain = Image.frombytes("L", (width // 4, height // 4), rnd.randbytes(width * height // 16))
    grain = grain.resize((width, height), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(1))
    img = Image.blend(base, Image.merge("RGB", (grain, grain, grain)), 0.15)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = GPS
    out = io.BytesIO()
    img.save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def plain(data: bytes) -> bytes:
    img = Image.open(io.BytesIO(data))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the best is kept)")
    args = parser.parse_args()
    data = photo()
    print(f"photo: 4000×3000 JPEG, {len(data):,} bytes (orientation 6, GPS)")
    floor = best(lambda: plain(data), args.repeat)
    print(f"plain Pillow open + save (quality 90): {floor * 1000:.0f} ms")
    total = 0.0
    for platform in PLATFORMS:
        rules = adapter_class(platform).rules.images
        if rules is None:
            continue
        seconds = best(lambda r=rules: fit_image(data, r), args.repeat)  # type: ignore[misc]
        total += seconds
        fitted = fit_image(data, rules)
        print(f"  {platform:10} {seconds * 1000:6.0f} ms  {seconds / floor:4.1f}×  {fitted.describe()}")
    print(f"all platforms: {total * 1000:.0f} ms = {total / floor:.1f}× one plain open + save")


if __name__ == "__main__":
    main()
