"""Time to fit one 12-megapixel phone photo for every platform that takes images, as the queue
does it (one :class:`~scheduler.fitting.FitCache` shared by the platforms' fits of the image),
in milliseconds and against a plain Pillow open + save of the same photo in the same run (the
floor any re-encoding pays).

    .venv/bin/python -m bench.fit_images [--repeat 5] [--profile /tmp/fit.prof]

The photo is made in memory like a phone's: 4000×3000 stored sideways (EXIF orientation 6,
shown 3000×4000), a GPS position, camera make and model, an sRGB ICC profile, JPEG quality 92;
smooth colour fields with fine grain, so it compresses like a photo (about 2.5 MB) rather than
like flat colour or pure noise. Each figure is the median of ``--repeat`` runs; each run starts
from the bytes (nothing decoded is kept between runs). CPU times are shown too: on a loaded
machine the wall time also counts waiting for a core. "each alone" fits every platform with a
fresh cache, as before the fits shared their work.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import random
import statistics
import time
from collections.abc import Callable

from PIL import Image, ImageCms, ImageFilter

from scheduler.fitting import FitCache, Fitted, fit_image
from scheduler.platforms import PLATFORMS, adapter_class
from scheduler.platforms.types import ImageRules
from tests.helpers import GPS

TARGET_SECONDS = 1.0


def photo(width: int = 4000, height: int = 3000) -> bytes:
    rnd = random.Random(12)
    base = Image.frombytes("RGB", (40, 30), rnd.randbytes(40 * 30 * 3)).resize((width, height), Image.Resampling.BICUBIC)
    grain = Image.frombytes("L", (width // 2, height // 2), rnd.randbytes(width * height // 4))
    grain = grain.resize((width, height), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(0.8))
    img = Image.blend(base, Image.merge("RGB", (grain, grain, grain)), 0.16)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 12"  # Model
    exif[0x0112] = 6
    exif[0x8825] = GPS
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    img.save(out, "JPEG", quality=92, exif=exif.tobytes(), icc_profile=icc)
    return out.getvalue()


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The median wall time and the median CPU time of ``repeat`` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def plain(data: bytes) -> bytes:
    img = Image.open(io.BytesIO(data))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def platform_rules() -> list[tuple[str, ImageRules]]:
    found = [(p, adapter_class(p).rules.images) for p in PLATFORMS]
    return [(p, r) for p, r in found if r is not None]


def fit_all(data: bytes, rules: list[tuple[str, ImageRules]], shared: bool) -> tuple[dict[str, float], dict[str, Fitted]]:
    """One run: each platform's time and copy; with one cache for all (as queued) or one each."""
    cache = FitCache()
    times: dict[str, float] = {}
    fitted: dict[str, Fitted] = {}
    for platform, r in rules:
        start = time.perf_counter()
        fitted[platform] = fit_image(data, r, cache=cache if shared else FitCache())
        times[platform] = time.perf_counter() - start
    return times, fitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (the median is kept)")
    parser.add_argument("--profile", help="write a cProfile of one shared run to this file")
    args = parser.parse_args()
    data = photo()
    rules = platform_rules()
    print(f"photo: 4000×3000 JPEG (shown 3000×4000: orientation 6), {len(data):,} bytes, GPS, camera, sRGB profile")
    floor, floor_cpu = timed(lambda: plain(data), args.repeat)
    print(f"plain Pillow open + save (quality 90): {floor * 1000:.0f} ms, CPU {floor_cpu * 1000:.0f} ms "
          f"(medians of {args.repeat})")
    runs = []
    _, cpu = timed(lambda: runs.append(fit_all(data, rules, shared=True)), args.repeat)
    each, each_cpu = timed(lambda: fit_all(data, rules, shared=False), args.repeat)
    print(f"{'platform':10} {'ms':>6} {'× floor':>8}  what it receives (as queued: after the platforms before it)")
    for platform, _ in rules:
        seconds = statistics.median(run[0][platform] for run in runs)
        print(f"  {platform:10} {seconds * 1000:5.0f} {seconds / floor:7.1f}×  {runs[0][1][platform].describe()}")
    total = statistics.median(sum(run[0].values()) for run in runs)
    verdict = "under" if total < TARGET_SECONDS else "OVER"
    print(f"all {len(rules)} platforms, as queued: {total * 1000:.0f} ms = {total / floor:.1f}× one plain open + save "
          f"({verdict} the {TARGET_SECONDS:.0f} s target); CPU {cpu * 1000:.0f} ms = {cpu / floor_cpu:.1f}×")
    print(f"all {len(rules)} platforms, each alone (no shared work): {each * 1000:.0f} ms = {each / floor:.1f}×; "
          f"CPU {each_cpu * 1000:.0f} ms = {each_cpu / floor_cpu:.1f}×; sharing saves {1 - cpu / each_cpu:.0%} of the CPU")
    print("(the wall time also counts waiting for a core when other processes hold them; the CPU time does not)")
    if args.profile:
        cProfile.runctx("fit_all(data, rules, shared=True)", globals(), {"data": data, "rules": rules},
                        filename=args.profile)
        print(f"profile of one shared run: {args.profile} (python -m pstats)")


if __name__ == "__main__":
    main()
