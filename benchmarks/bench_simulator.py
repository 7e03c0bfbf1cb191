"""Speed of the low-light data set maker and of the DVS simulator.

Times one full sample at the published size (RGB 768×960, APS 256×320, 25 sub-frames, 16×20 patch grid, 13-bin
voxels; trajectories, blur, events, voxel grid, noise, flow and writing included), per stage; the simulator alone
in events per second (numpy and torch back ends); and, as the baseline measured in the same run, a straightforward
per-pixel / per-event loop implementation of the same simulator step on a crop, reported as a ratio of the time
per pixel-step. Optionally a pool run over several samples gives the throughput with all cores.

Run: ``python benchmarks/bench_simulator.py [--repeats 3] [--pool-samples 4] [--num-sources N]``.
"""

import argparse
import importlib.util
import math
import os
import os.path as osp
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

from basicsr.events import voxel_grid  # noqa: E402
from basicsr.synthesis.lowlight_noise import add_aps_noise, add_rgb_noise, sample_noise_params  # noqa: E402
from basicsr.synthesis.motion import base_trajectory, patchwise_trajectory, synthesize_blur  # noqa: E402
from basicsr.synthesis.simulator import DVSSimulator, lin_log  # noqa: E402

RGB_SIZE = (768, 960)
REFERENCE_SECONDS = (20.0, 34.0)  # the original generator per sample on this 2-core machine (issue 6)
SAMPLES_PER_SOURCE = 20


def load_maker():
    """Import the maker script as a module (scripts are not a package)."""
    path = osp.join(ROOT, 'scripts', 'data_preparation', 'make_lowlight_dataset.py')
    spec = importlib.util.spec_from_file_location('make_lowlight_dataset', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules['make_lowlight_dataset'] = module
    spec.loader.exec_module(module)
    return module


def make_source(seed=0):
    """A 768×960 linear-looking source: smooth texture, dark overall, a few saturated lights."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((*RGB_SIZE, 3)).astype(np.float32), (0, 0), 4) * 0.9
    img = np.clip((img - 0.35) * 3, 0, 1) ** 2
    for _ in range(12):
        y, x = rng.integers(0, RGB_SIZE[0]), rng.integers(0, RGB_SIZE[1])
        cv2.circle(img, (int(x), int(y)), int(rng.integers(4, 20)), (1.0, 1.0, 1.0), -1)
    return img


def loop_simulator_step(state, frame, dt, rng, cfg):
    """Straightforward per-pixel, per-event implementation of one simulator step (the baseline)."""
    height, width = frame.shape
    l_old, l1, llp, th_on, th_off = state
    n_on = np.zeros((height, width), np.int64)
    n_off = np.zeros((height, width), np.int64)
    for y in range(height):
        for x in range(width):
            intensity = float(frame[y, x])
            log_i = intensity / 20 * math.log(20) if intensity < 20 else math.log(intensity)
            eps = min(dt * 2 * math.pi * cfg['cutoff_hz'] * (intensity + 20) / 275, 1.0)
            l1[y, x] = (1 - eps) * l1[y, x] + eps * log_i
            llp[y, x] = (1 - eps) * llp[y, x] + eps * l1[y, x]
            l_old[y, x] -= dt * cfg['leak_rate_hz'] * cfg['pos_thres']
            diff = llp[y, x] - l_old[y, x]
            n_on[y, x] = math.floor(max(diff, 0) / th_on[y, x])
            n_off[y, x] = math.floor(max(-diff, 0) / th_off[y, x])
            l_old[y, x] += n_on[y, x] * th_on[y, x] - n_off[y, x] * th_off[y, x]
    num_sub = int(max(n_on.max(), n_off.max()))
    events = []
    for j in range(1, num_sub + 1):
        t_j = dt * j / num_sub
        u = rng.random((height, width))
        for y in range(height):
            for x in range(width):
                if n_on[y, x] >= j:
                    events.append((t_j, x, y, 1))
                if n_off[y, x] >= j:
                    events.append((t_j, x, y, -1))
                luma = (float(frame[y, x]) + 20) / 275
                rate = max(cfg['shot_noise_rate_hz'] / 2 * ((0.25 - 1) * luma + 1), 0)
                q = rate * dt / num_sub * cfg['pos_thres'] / th_on[y, x]
                if u[y, x] > 1 - q:
                    events.append((t_j, x, y, 1))
                    l_old[y, x] += th_on[y, x]
                elif u[y, x] < q:
                    events.append((t_j, x, y, -1))
                    l_old[y, x] -= th_off[y, x]
    return events


def bench_loop_baseline(frames, times, crop, cfg):
    """CPU seconds per pixel-step, events and CPU seconds of the loop baseline on a crop of the APS frames."""
    sub = frames[:, :crop[0], :crop[1]].astype(np.float64)
    rng = np.random.default_rng(0)
    log0 = lin_log(sub[0])
    state = [log0 - rng.uniform(0, cfg['pos_thres'], log0.shape), log0.copy(), log0.copy(),
             np.maximum(rng.normal(0.3, 0.03, log0.shape), 0.01), np.maximum(rng.normal(0.3, 0.03, log0.shape), 0.01)]
    start = time.process_time()
    count = 0
    for k in range(1, len(sub)):
        count += len(loop_simulator_step(state, sub[k], times[k] - times[k - 1], rng, cfg))
    seconds = time.process_time() - start
    return seconds / (crop[0] * crop[1] * (len(sub) - 1)), count, seconds


def _now():
    return np.array([time.perf_counter(), time.process_time()])


def bench_full_sample(maker, img, repeats, out_dir):
    """Median (wall, CPU) seconds of one full sample (synthesis + writing) and per-stage medians.

    CPU time (of this single-threaded process) is reported next to wall-clock time because the shared machine's
    load inflates wall-clock figures.
    """
    cfg = dict(maker.DEFAULTS)
    totals, stages = [], {}
    for rep in range(repeats):
        rng = np.random.default_rng([0, rep])
        marks = [('start', _now())]
        base, _ = base_trajectory(rng, canvas=48, samples=25, downsampling=3)
        traj, _ = patchwise_trajectory(base, rng, canvas=48, patch_number=(16, 20), downsampling=3)
        boosted = img.copy()
        boosted[boosted == 1.0] += rng.uniform(1.25, 2.5)
        params = sample_noise_params(rng)
        marks.append(('trajectories', _now()))
        rgb_blur, _ = synthesize_blur(boosted, traj)
        marks.append(('rgb blur (24 remaps)', _now()))
        aps = maker.rgb_to_aps(boosted, 3, 'decimate')
        aps_blur, aps_frames = synthesize_blur(aps, traj / 3, keep_frames=True)
        marks.append(('aps + aps blur', _now()))
        stream = DVSSimulator(**cfg['simulator']).simulate(aps_frames * 255.0, np.arange(25) * (0.1 / 24), rng)
        marks.append(('simulator', _now()))
        voxel_grid(stream.x, stream.y, stream.t, stream.p, 13, 256, 320, t_range=(0.0, 0.1))
        marks.append(('voxel grid', _now()))
        add_rgb_noise(rgb_blur, params, rng)
        add_aps_noise(aps_blur, params, rng)
        marks.append(('noise', _now()))
        # the real thing end to end, writing included, for the total
        t0 = _now()
        out, _ = maker.synthesize_sample(img, np.random.default_rng([0, rep]), cfg, 'train')
        t1 = _now()
        maker.write_sample(out_dir, f'bench_{rep:03d}', 'train', out)
        t2 = _now()
        marks_dict = {name: marks[i][1] - marks[i - 1][1] for i, (name, _) in enumerate(marks) if i}
        marks_dict['writing (PNG + npy)'] = t2 - t1
        for name, value in marks_dict.items():
            stages.setdefault(name, []).append(value)
        totals.append(t2 - t0)
    return np.median(totals, axis=0), {k: np.median(v, axis=0) for k, v in stages.items()}, len(stream)


def bench_simulator(frames, times, backend, repeats):
    """Median wall and CPU seconds and the event count of the simulator alone on the APS sub-frames."""
    if backend == 'torch':
        import torch
        torch.set_num_threads(1)  # small per-pixel ops: threads only add overhead on a shared CPU
    DVSSimulator(backend=backend).simulate(frames[:3], times[:3], np.random.default_rng(0))  # warm-up
    runs = []
    for rep in range(repeats):
        sim = DVSSimulator(backend=backend)
        start = _now()
        stream = sim.simulate(frames, times, np.random.default_rng(rep))
        runs.append((*(_now() - start), len(stream)))
    runs = np.array(runs)
    return float(np.median(runs[:, 0])), float(np.median(runs[:, 1])), int(np.median(runs[:, 2]))


def bench_pool(maker, img, samples, workers, tmp):
    """Wall-clock seconds per sample of ``make_dataset`` with a process pool."""
    src = osp.join(tmp, 'src')
    os.makedirs(src, exist_ok=True)
    cv2.imwrite(osp.join(src, 'bench.png'), cv2.cvtColor(np.rint(img * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    start = time.perf_counter()
    summary = maker.make_dataset(src, osp.join(tmp, 'pool_out'), mode='train', seed=0, workers=workers,
                                 trajectories=samples, progress=False)
    return (time.perf_counter() - start) / len(summary['made'])


def fmt_hours(seconds):
    """Seconds as hours and days."""
    return f'{seconds / 3600:.1f} h ({seconds / 86400:.2f} days)'


def main():
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--crop', type=int, nargs=2, default=(32, 40), help='crop of the loop baseline (APS px)')
    parser.add_argument('--pool-samples', type=int, default=4, help='samples of the pool run (0 skips it)')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--num-sources', type=int, default=None,
                        help='source images of the set to extrapolate to (20 samples each)')
    parser.add_argument('--torch', action='store_true', help='also time the torch back end (CPU)')
    args = parser.parse_args()
    cv2.setNumThreads(1)
    maker = load_maker()
    img = make_source()
    print(f'machine: {os.cpu_count()} cores, shared with other jobs; figures are noisy')
    with tempfile.TemporaryDirectory() as tmp:
        (total, total_cpu), stages, n_events = bench_full_sample(maker, img, args.repeats, tmp)
        print(f'\none full sample (RGB 768x960, APS 256x320, 25 sub-frames, 16x20 patches, 13 bins), '
              f'1 thread, median of {args.repeats}: {total:.3f} s wall, {total_cpu:.3f} s CPU  ({n_events} events)')
        for name, (seconds, cpu) in stages.items():
            print(f'  {name:<24s} {seconds:.3f} s wall  {cpu:.3f} s CPU')
        ref_lo, ref_hi = REFERENCE_SECONDS
        print(f'  vs the original generator ({ref_lo:.0f}-{ref_hi:.0f} s/sample): {ref_lo / total:.0f}x-'
              f'{ref_hi / total:.0f}x faster (wall); target <= 1 s: wall {"met" if total <= 1 else "NOT met"}, '
              f'CPU {"met" if total_cpu <= 1 else "NOT met"}')

        rng = np.random.default_rng([0, 0])
        base, _ = base_trajectory(rng)
        traj, _ = patchwise_trajectory(base, rng)
        aps = maker.rgb_to_aps(img, 3, 'decimate')
        _, frames = synthesize_blur(aps, traj / 3, keep_frames=True)
        frames = frames * 255.0
        times = np.arange(25) * (0.1 / 24)
        print('\nsimulator alone (24 steps at 256x320):')
        backends = ['numpy'] + (['torch'] if args.torch else [])
        per_pixel_step = None
        for backend in backends:
            seconds, cpu, count = bench_simulator(frames, times, backend, args.repeats)
            print(f'  {backend:<6s} {seconds:.3f} s wall, {cpu:.3f} s CPU, {count} events, '
                  f'{count / seconds / 1e6:.2f} M events/s wall ({count / cpu / 1e6:.2f} CPU), '
                  f'{cpu / (256 * 320 * 24) * 1e9:.1f} ns CPU per pixel-step')
            if backend == 'numpy':
                per_pixel_step = cpu / (256 * 320 * 24)
        cfg = dict(maker.DEFAULTS['simulator'])
        loop_pps, loop_events, loop_seconds = bench_loop_baseline(frames, times, tuple(args.crop), cfg)
        print(f'  baseline per-pixel/per-event loop on a {args.crop[0]}x{args.crop[1]} crop: {loop_seconds:.3f} s CPU, '
              f'{loop_events} events, {loop_pps * 1e9:.0f} ns CPU per pixel-step '
              f'(~{loop_pps * 256 * 320 * 24:.1f} s for the full frame)')
        print(f'  ratio baseline / vectorised numpy (CPU time per pixel-step): {loop_pps / per_pixel_step:.0f}x')

        per_sample_pool = None
        if args.pool_samples > 0:
            per_sample_pool = bench_pool(maker, img, args.pool_samples, args.workers, tmp)
            print(f'\npool run: {args.pool_samples} samples with {args.workers} workers: {per_sample_pool:.3f} s '
                  f'wall-clock per sample (includes worker start-up)')

    rate = per_sample_pool if per_sample_pool else total / max(args.workers, 1)
    print('\nwhole set (20 samples per source image; the spec does not state the number of RealBlur sources):')
    print(f'  per 1000 samples: {fmt_hours(1000 * rate)}')
    for sources in ([args.num_sources] if args.num_sources else [100, 500, 1000]):
        print(f'  {sources} sources = {sources * SAMPLES_PER_SOURCE} samples: '
              f'{fmt_hours(sources * SAMPLES_PER_SOURCE * rate)} (original: '
              f'{fmt_hours(sources * SAMPLES_PER_SOURCE * ref_lo / max(args.workers, 1))} at best with '
              f'{args.workers} processes)')


if __name__ == '__main__':
    main()
