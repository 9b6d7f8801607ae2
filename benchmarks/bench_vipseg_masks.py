"""VIPSeg's per-frame mask conversion: the 16-bit lookup table `VIPSeg.read_mask` uses against
the official arithmetic (`convert_panomask`), side by side on a 720x1280 panomask of stuff
values and thing ids in blocks; the two must give the same ids.

    python benchmarks/bench_vipseg_masks.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ovbench.data.vipseg import _panomask_table, convert_panomask


def fastest_ms(step, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    values = np.r_[np.arange(1, 60), np.arange(6100, 6110), np.arange(12000, 12005)]
    raw = np.random.default_rng(0).choice(values, (45, 80)).repeat(16, 0).repeat(16, 1).astype(np.int32)
    if not np.array_equal(convert_panomask(raw), _panomask_table()[raw]):
        raise SystemExit("the table and the arithmetic disagree")
    arithmetic = fastest_ms(lambda: convert_panomask(raw), args.repeats)
    table = fastest_ms(lambda: (raw.min(), raw.max(), _panomask_table()[raw]), args.repeats)  # as read_mask does
    print(f"720x1280 panomask, fastest of {args.repeats}: arithmetic {arithmetic:.2f} ms, "
          f"table (range check included) {table:.2f} ms: {arithmetic / table:.1f}x; identical ids")


if __name__ == "__main__":
    main()
