"""Throughput of the event representations and of the h5 event reader, against naive baselines in the same run.

Usage::

    python benchmarks/bench_events.py [--events 2000000] [--repeats 5]

Prints million events per second (best of ``--repeats``) for each representation beside its baseline (a per-event
Python loop for the 13-bin grid on a subsample, ``np.add.at`` scatter for the E2VID grid and SCER) and the ratio.
Figures are wall-clock on whatever else the machine is doing; compare ratios, not absolute values.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from basicsr.events import EventStream, H5EventReader, scer, voxel_grid, write_event_h5  # noqa: E402

HEIGHT, WIDTH = 260, 346


def make_stream(num_events, seed=0):
    """Random time-sorted events on a DAVIS346 sensor over 50 ms.

    Args:
        num_events (int): Number of events.
        seed (int): Seed of the generator. Default: 0.

    Returns:
        EventStream: The stream.
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(0, WIDTH, num_events).astype(np.uint16)
    y = rng.integers(0, HEIGHT, num_events).astype(np.uint16)
    t = 1234.5 + np.sort(rng.random(num_events)) * 0.05
    p = (rng.integers(0, 2, num_events) * 2 - 1).astype(np.int8)
    return EventStream(x, y, t, p, HEIGHT, WIDTH)


def best_time(func, repeats):
    """Returns the best wall time of ``repeats`` calls (seconds) and the last result.

    Args:
        func (callable): Function without arguments.
        repeats (int): Number of calls.

    Returns:
        tuple: ``(seconds, result)``.
    """
    best, out = float('inf'), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - start)
    return best, out


def loop_voxel_grid(x, y, t, p, num_bins, height, width, t0, t1):
    """Per-event Python loop (the low-light reference's way), the slow baseline.

    Args:
        x, y, t, p (np.ndarray): Events.
        num_bins (int): Bins.
        height (int): Sensor height.
        width (int): Sensor width.
        t0 (float): Window start.
        t1 (float): Window end.

    Returns:
        np.ndarray: float32 (B, H, W).
    """
    grid = np.zeros((num_bins, height, width), np.float64)
    dt = (t1 - t0) / (num_bins - 1)
    for xi, yi, ti, pi in zip(x.tolist(), y.tolist(), t.tolist(), p.tolist()):
        tau = (ti - t0) / dt
        b = min(int(tau), num_bins - 1)
        w = tau - b
        grid[b, yi, xi] += pi * (1 - w)
        grid[min(b + 1, num_bins - 1), yi, xi] += pi * w
    return grid.astype(np.float32)


def add_at_voxel_grid(x, y, t, p, num_bins, height, width):
    """E2VID grid by ``np.add.at`` scatter, the common vectorised baseline.

    Args:
        x, y, t, p (np.ndarray): Events.
        num_bins (int): Bins.
        height (int): Sensor height.
        width (int): Sensor width.

    Returns:
        np.ndarray: float32 (B, H, W).
    """
    grid = np.zeros(num_bins * height * width, np.float64)
    tau = (num_bins - 1) * (t - t[0]) / (t[-1] - t[0])
    lower = np.floor(tau).astype(np.int64)
    frac = tau - lower
    pf = p.astype(np.float64)
    pix = y.astype(np.int64) * width + x.astype(np.int64)
    np.add.at(grid, lower * height * width + pix, pf * (1 - frac))
    valid = lower + 1 < num_bins
    np.add.at(grid, (lower[valid] + 1) * height * width + pix[valid], (pf * frac)[valid])
    return grid.reshape(num_bins, height, width).astype(np.float32)


def add_at_scer(x, y, t, p, num_bins, height, width):
    """SCER from ``np.add.at`` bins and cumulative sums, the baseline of the fast SCER.

    Args:
        x, y, t, p (np.ndarray): Events.
        num_bins (int): Bins.
        height (int): Sensor height.
        width (int): Sensor width.

    Returns:
        np.ndarray: float32 (B, H, W).
    """
    rel = t - t[0]
    edges = np.arange(1, num_bins) * (rel[-1] / num_bins)
    edges[num_bins // 2 - 1] = rel[-1] / 2
    b = np.searchsorted(edges, rel, side='right')
    bins = np.zeros((num_bins, height, width), np.float64)
    np.add.at(bins, (b, y.astype(np.int64), x.astype(np.int64)), p.astype(np.float64))
    half = num_bins // 2
    left = -np.cumsum(bins[:half][::-1], axis=0)[::-1]
    right = np.cumsum(bins[half:], axis=0)
    return np.concatenate([left, right]).astype(np.float32)


def report(name, n_fast, sec_fast, n_base, sec_base, base_name):
    """Prints one line: M events/s of ours and of the baseline, and the ratio.

    Args:
        name (str): Representation.
        n_fast (int): Events processed by ours.
        sec_fast (float): Seconds for ours.
        n_base (int): Events processed by the baseline.
        sec_base (float): Seconds for the baseline.
        base_name (str): Baseline description.
    """
    fast, base = n_fast / sec_fast / 1e6, n_base / sec_base / 1e6
    print(f'{name:34s} {fast:8.1f} M ev/s   baseline {base_name:26s} {base:7.2f} M ev/s   x{fast / base:7.1f}')


def main():
    """Runs the benchmark and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--events', type=int, default=2_000_000)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--loop-events', type=int, default=100_000, help='subsample for the per-event loop')
    args = parser.parse_args()
    stream = make_stream(args.events)
    x, y, t, p = stream.arrays()
    n = len(stream)
    t0, t1 = stream.t_first, stream.t_last
    print(f'{n} events on {HEIGHT}x{WIDTH}, numpy {np.__version__}, {os.cpu_count()} CPUs, best of {args.repeats}')

    m = min(args.loop_events, n)
    sec_loop, ref = best_time(lambda: loop_voxel_grid(x[:m], y[:m], t[:m], p[:m], 13, HEIGHT, WIDTH, t0, t1), 1)
    ours_sub = voxel_grid(x[:m], y[:m], t[:m], p[:m], 13, HEIGHT, WIDTH, t_range=(t0, t1))
    assert np.abs(ours_sub - ref).max() < 1e-4, 'fixed-window grid disagrees with the per-event loop'
    sec, _ = best_time(lambda: voxel_grid(x, y, t, p, 13, HEIGHT, WIDTH, t_range=(t0, t1)), args.repeats)
    report('voxel_grid 13 bins, fixed window', n, sec, m, sec_loop, f'per-event loop ({m // 1000}k)')

    sec_add, ref = best_time(lambda: add_at_voxel_grid(x, y, t, p, 13, HEIGHT, WIDTH), 1)
    sec, ours = best_time(lambda: voxel_grid(x, y, t, p, 13, HEIGHT, WIDTH), args.repeats)
    assert np.abs(ours - ref).max() < 1e-3, 'E2VID grid disagrees with np.add.at'
    report('voxel_grid 13 bins, E2VID', n, sec, n, sec_add, 'np.add.at')

    sec_add, ref = best_time(lambda: add_at_scer(x, y, t, p, 6, HEIGHT, WIDTH), 1)
    sec, ours = best_time(lambda: scer(x, y, t, p, 6, HEIGHT, WIDTH), args.repeats)
    assert np.array_equal(ours, ref), 'SCER disagrees with np.add.at'
    report('scer 6 bins', n, sec, n, sec_add, 'np.add.at')

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'bench.h5')
        write_event_h5(path, stream)
        reader = H5EventReader(path)
        window = (t0 + 0.01, t0 + 0.04)
        sec_full, full = best_time(lambda: H5EventReader(path).read_all(), args.repeats)
        sec_win, win = best_time(lambda: reader.read_window(*window), args.repeats)
        reader.close()
        print(f'{"h5 read, whole file":34s} {len(full) / sec_full / 1e6:8.1f} M ev/s')
        print(f'{"h5 read, 30 ms window (streamed)":34s} {len(win) / sec_win / 1e6:8.1f} M ev/s '
              f'({len(win)} of {n} events read)')


if __name__ == '__main__':
    main()
