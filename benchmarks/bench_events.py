"""Throughput of the event representations and of the h5 event reader, against naive baselines in the same run.

Usage::

    python benchmarks/bench_events.py [--events 2000000] [--repeats 5]

Prints million events per second (best of ``--repeats``) for each representation beside its baseline (a per-event
Python loop for the 13-bin grid on a subsample, ``np.add.at`` scatter for the E2VID grid and SCER) and the ratio;
then the h5 reader: a whole-file read, a window read, and the once-per-file timestamp check made on opening.
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
    """Returns the best wall time and the best CPU time of ``repeats`` calls (seconds) and the last result.

    CPU time (this process) is less disturbed than wall time when other jobs share the cores.

    Args:
        func (callable): Function without arguments.
        repeats (int): Number of calls.

    Returns:
        tuple: ``(wall_seconds, cpu_seconds, result)``.
    """
    best, best_cpu, out = float('inf'), float('inf'), None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = func()
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
        best = min(best, time.perf_counter() - start)
    return best, best_cpu, out


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


def report(name, n_fast, times_fast, n_base, times_base, base_name):
    """Prints one line: M events/s of ours and of the baseline (wall, and CPU in brackets), and the wall ratio.

    Args:
        name (str): Representation.
        n_fast (int): Events processed by ours.
        times_fast (tuple): ``(wall, cpu)`` seconds for ours.
        n_base (int): Events processed by the baseline.
        times_base (tuple): ``(wall, cpu)`` seconds for the baseline.
        base_name (str): Baseline description.
    """
    fast, fast_cpu = (n_fast / s / 1e6 for s in times_fast)
    base, base_cpu = (n_base / s / 1e6 for s in times_base)
    print(f'{name:34s} {fast:7.1f} M ev/s (cpu {fast_cpu:6.1f})   baseline {base_name:26s} {base:6.2f} M ev/s '
          f'(cpu {base_cpu:6.2f})   x{fast / base:6.1f}')


def main():
    """Runs the benchmark and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--events', type=int, default=2_000_000)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--loop-events', type=int, default=100_000, help='subsample for the per-event loop')
    args = parser.parse_args()
    stream = make_stream(args.events)
    x, y, t, p = stream.arrays()
    n = len(stream)
    t0, t1 = stream.t_first, stream.t_last
    print(f'{n} events on {HEIGHT}x{WIDTH}, numpy {np.__version__}, {os.cpu_count()} CPUs, best of {args.repeats}')

    m = min(args.loop_events, n)
    *t_loop, ref = best_time(lambda: loop_voxel_grid(x[:m], y[:m], t[:m], p[:m], 13, HEIGHT, WIDTH, t0, t1), 1)
    ours_sub = voxel_grid(x[:m], y[:m], t[:m], p[:m], 13, HEIGHT, WIDTH, t_range=(t0, t1))
    assert np.abs(ours_sub - ref).max() < 1e-4, 'fixed-window grid disagrees with the per-event loop'
    *t_ours, _ = best_time(lambda: voxel_grid(x, y, t, p, 13, HEIGHT, WIDTH, t_range=(t0, t1)), args.repeats)
    report('voxel_grid 13 bins, fixed window', n, t_ours, m, t_loop, f'per-event loop ({m // 1000}k)')

    *t_add, ref = best_time(lambda: add_at_voxel_grid(x, y, t, p, 13, HEIGHT, WIDTH), 1)
    *t_ours, ours = best_time(lambda: voxel_grid(x, y, t, p, 13, HEIGHT, WIDTH), args.repeats)
    assert np.abs(ours - ref).max() < 1e-3, 'E2VID grid disagrees with np.add.at'
    report('voxel_grid 13 bins, E2VID', n, t_ours, n, t_add, 'np.add.at')

    *t_add, ref = best_time(lambda: add_at_scer(x, y, t, p, 6, HEIGHT, WIDTH), 1)
    *t_ours, ours = best_time(lambda: scer(x, y, t, p, 6, HEIGHT, WIDTH), args.repeats)
    assert np.array_equal(ours, ref), 'SCER disagrees with np.add.at'
    report('scer 6 bins', n, t_ours, n, t_add, 'np.add.at')

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'bench.h5')
        write_event_h5(path, stream)
        with H5EventReader(path) as reader:
            window = (t0 + 0.01, t0 + 0.04)
            sec_full, cpu_full, full = best_time(reader.read_all, args.repeats)
            sec_win, cpu_win, win = best_time(lambda: reader.read_window(*window), args.repeats)
        print(f'{"h5 read + validate, whole file":34s} {len(full) / sec_full / 1e6:7.1f} M ev/s '
              f'(cpu {len(full) / cpu_full / 1e6:6.1f})')
        print(f'{"h5 read + validate, 30 ms window":34s} {len(win) / sec_win / 1e6:7.1f} M ev/s '
              f'(cpu {len(win) / cpu_win / 1e6:6.1f})   {len(win)} of {n} events read')
        sec_check, cpu_check, _ = best_time(lambda: H5EventReader(path).close(), args.repeats)
        sec_open, cpu_open, _ = best_time(lambda: H5EventReader(path, validate=False).close(), args.repeats)
        print(f'{"h5 open + timestamp check, whole":34s} {n / sec_check / 1e6:7.1f} M ev/s (cpu '
              f'{n / cpu_check / 1e6:6.1f})   {sec_check * 1e3:.1f} ms; open without the check '
              f'{sec_open * 1e3:.1f} ms')


if __name__ == '__main__':
    main()
