"""Make the synthetic low-light event deblurring data set from linear source images (spec lowlight.md §9.1, §10).

Every ``*.png`` in the input folder (sorted) yields ``--trajectories`` samples (20 in the reference). Per sample: a
random camera trajectory and patch-wise trajectories, a dynamic-range boost of saturated pixels, RGB and APS blur by
averaging warped sub-frames, DVS events simulated on the APS sub-frames, their 13-bin voxel grid, low-light noise,
ground-truth flow and, in test mode, the trajectories and blur kernels. Each sample draws all its random numbers
from one generator seeded with (seed, sample index), and is recorded with its parameters in ``manifest.jsonl``.

The run is resumable: a sample counts as done when all its files exist and the manifest holds its record. A
sample's files are written under temporary names and renamed, the voxel grid (which defines the sample list for
the data loaders) last, and its manifest line is appended after that, so a killed run never leaves a half sample.
Temporary files left by a killed run are removed at start. Do not run two makers on the same output folder at once.

Example::

    python scripts/data_preparation/make_lowlight_dataset.py --input RealBlurSourceFiles --output data/train \
        --mode train --seed 0 --workers 8
"""

import argparse
import glob
import json
import os
import os.path as osp
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
# Spawned pool workers import the task functions by this module's name, whoever imported it.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from basicsr.events import voxel_grid  # noqa: E402
from basicsr.synthesis.lowlight_noise import add_aps_noise, add_rgb_noise, sample_noise_params  # noqa: E402
from basicsr.synthesis.motion import (base_trajectory, patchwise_kernel_map, patchwise_trajectory,  # noqa: E402
                                   synthesize_blur, trajectory_flow, trajectory_kernel)
from basicsr.synthesis.simulator import DVSSimulator  # noqa: E402

MANIFEST = 'manifest.jsonl'
TMP_TAG = '.part-'
FLIP_SUFFIX = ('', '_flipud', '_fliplr', '_flip')
# (folder, extension) of every output; the voxel grid is renamed last and marks the sample as listed
IMAGE_OUTPUTS = {
    'aps_blur': 'share/APS_blur',
    'aps_blur_clean': 'share/APS_blur_clean',
    'aps_sharp': 'subnetwork2/APS',
    'rgb_sharp': 'subnetwork2/RGB',
    'rgb_blur': 'subnetwork2/RGB_blur',
    'rgb_blur_clean': 'subnetwork2/RGB_blur_clean',
}
ARRAY_OUTPUTS = {
    'flow': 'share/flow',
    'events': 'others/events',
}
TEST_OUTPUTS = {
    'base_trajectory': 'others/base_trajectory_APS',
    'patch_trajectory': 'others/patch_wise_trajectory_APS',
    'base_kernel': 'others/base_kernel_APS',
    'patch_kernel': 'others/patch_wise_kernel_APS',
}
VOXEL_FOLDER = 'subnetwork1/events_voxel_grid'

DEFAULTS = {
    'trajectories': 20,
    'patch_grid': (16, 20),
    'sub_frames': 25,
    'exposure': 0.1,
    'num_bins': 13,
    'downsampling': 3,
    'aps_downsample': 'decimate',
    'noisy_rounding': 'floor',
    'boost': (1.25, 2.5),
    'simulator': {'pos_thres': 0.3, 'neg_thres': 0.3, 'sigma_thres': 0.03, 'cutoff_hz': 30.0, 'leak_rate_hz': 0.1,
                  'shot_noise_rate_hz': 0.1, 'refractory_period_s': 0.0, 'shot_noise_every_step': False},
    'backend': 'numpy',
    'device': None,
}


def output_files(root, name, mode):
    """All files of one sample, the voxel grid last.

    Args:
        root (str): Output root.
        name (str): Sample name.
        mode (str): ``'train'`` or ``'test'``.

    Returns:
        list[str]: Paths.
    """
    files = [osp.join(root, folder, f'{name}.png') for folder in IMAGE_OUTPUTS.values()]
    files += [osp.join(root, folder, f'{name}.npy') for folder in ARRAY_OUTPUTS.values()]
    if mode == 'test':
        files += [osp.join(root, folder, f'{name}.npy') for folder in TEST_OUTPUTS.values()]
    return files + [osp.join(root, VOXEL_FOLDER, f'{name}.npy')]


def list_sources(input_dir):
    """Sorted ``*.png`` files of the input folder, with unique stems.

    Args:
        input_dir (str): Folder of linear source PNGs.

    Returns:
        list[str]: Paths.
    """
    if not osp.isdir(input_dir):
        raise FileNotFoundError(f'--input: folder {input_dir} does not exist')
    paths = sorted(glob.glob(osp.join(input_dir, '*.png')))
    if not paths:
        raise FileNotFoundError(f'--input: no *.png files in {input_dir}')
    return paths


def plan_samples(sources, mode, trajectories):
    """The sample list: name, global index (the seed's second word), source and flip code.

    Args:
        sources (list[str]): Sorted source paths.
        mode (str): ``'train'`` (flip code = trajectory index mod 4) or ``'test'`` (no flip).
        trajectories (int): Samples per source image.

    Returns:
        list[dict]: One entry per sample, in index order.
    """
    plan = []
    for src_idx, path in enumerate(sources):
        stem = osp.splitext(osp.basename(path))[0]
        for i in range(trajectories):
            flip = i % 4 if mode == 'train' else 0
            plan.append({'index': src_idx * trajectories + i, 'name': f'{stem}{FLIP_SUFFIX[flip]}_{i:03d}',
                         'source': path, 'flip': flip})
    return plan


def read_source(path):
    """Read a linear source PNG as float32 RGB in [0, 1] (8-bit / 255, 16-bit / 65535)."""
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f'{path}: cannot be read as an image')
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f'{path}: expected a colour image, got shape {img.shape}')
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(img.dtype)
    if scale is None:
        raise ValueError(f'{path}: expected 8- or 16-bit PNG, got dtype {img.dtype}')
    return cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB).astype(np.float32) / scale


def flip_image(img, flip):
    """Apply the reference flip code: 0 none, 1 vertical, 2 horizontal, 3 both."""
    if flip in (1, 3):
        img = img[::-1]
    if flip in (2, 3):
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


def rgb_to_aps(rgb, factor, method):
    """Gray APS frame from the RGB frame: luma, then ``'decimate'`` (reference INTER_LINEAR at an integer factor,
    i.e. the centre pixel of each block) or ``'area'`` (block average, no aliasing)."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    size = (rgb.shape[1] // factor, rgb.shape[0] // factor)
    interp = cv2.INTER_LINEAR if method == 'decimate' else cv2.INTER_AREA
    return cv2.resize(gray, size, interpolation=interp)


def to_uint8(img):
    """OpenCV's float → 8-bit conversion of ``imwrite(value * 255)``: round to nearest, saturate."""
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def synthesize_sample(img, rng, cfg, mode):
    """All arrays of one sample from a (flipped) source image.

    Draw order: base trajectory, patch-wise trajectories, boost factor, noise parameters, simulator (leak phase,
    thresholds, per-step noise and shuffles), RGB noise normals, APS noise normals.

    Args:
        img (ndarray): float32 (H, W, 3) RGB source in [0, 1].
        rng (numpy.random.Generator): The sample's generator.
        cfg (dict): Maker configuration (see ``DEFAULTS``).
        mode (str): ``'train'`` or ``'test'``.

    Returns:
        tuple[dict, dict]: Arrays by output key (images as float in [0, 1], RGB order) and the sample's parameters.
    """
    rows, cols = cfg['patch_grid']
    factor = cfg['downsampling']
    height, width = img.shape[:2]
    if height % (rows * factor) or width % (cols * factor) or height // rows != width // cols:
        raise ValueError(f'source of size {height}x{width} does not split into {rows}x{cols} square patches '
                         f'divisible by {factor}')
    canvas = height // rows
    base, base_params = base_trajectory(rng, canvas=canvas, samples=cfg['sub_frames'], downsampling=factor)
    traj, patch_params = patchwise_trajectory(base, rng, canvas=canvas, patch_number=(rows, cols),
                                              downsampling=factor)
    boost = float(rng.uniform(*cfg['boost']))
    img = img.copy()
    img[img == 1.0] += boost
    noise_params = sample_noise_params(rng)

    rgb_blur, _ = synthesize_blur(img, traj)
    aps = rgb_to_aps(img, factor, cfg['aps_downsample'])
    traj_aps = traj / factor
    aps_blur, aps_frames = synthesize_blur(aps, traj_aps, keep_frames=True)

    times = np.arange(cfg['sub_frames']) * (cfg['exposure'] / (cfg['sub_frames'] - 1))
    sim = DVSSimulator(backend=cfg['backend'], device=cfg['device'], **cfg['simulator'])
    stream = sim.simulate(aps_frames * 255.0, times, rng)
    voxel = voxel_grid(stream.x, stream.y, stream.t, stream.p, cfg['num_bins'], stream.height, stream.width,
                       t_range=(0.0, cfg['exposure']))

    rgb_noisy = add_rgb_noise(rgb_blur, noise_params, rng, rounding=cfg['noisy_rounding'])
    aps_noisy = add_aps_noise(aps_blur, noise_params, rng, rounding=cfg['noisy_rounding'])

    out = {
        'aps_blur': aps_noisy, 'aps_blur_clean': aps_blur, 'aps_sharp': aps, 'rgb_sharp': img,
        'rgb_blur': rgb_noisy, 'rgb_blur_clean': rgb_blur,
        'flow': trajectory_flow(traj_aps, *aps.shape),
        'events': stream.to_array(np.float32),
        'voxel': np.ascontiguousarray(voxel.transpose(1, 2, 0)),
    }
    if mode == 'test':
        ksize = canvas // factor
        out['base_trajectory'] = (base / factor).astype(np.complex128)
        out['patch_trajectory'] = traj_aps.astype(np.complex128)
        out['base_kernel'] = trajectory_kernel(base / factor, ksize)
        out['patch_kernel'] = patchwise_kernel_map(traj_aps, ksize)
    params = {'base_trajectory': base_params, 'patch_trajectory': patch_params, 'boost': boost, 'noise': noise_params,
              'events': {key: sim.counts[key] for key in ('on', 'off', 'noise_on', 'noise_off')},
              'num_events': int(len(stream))}
    return out, params


def _tmp_path(path):
    folder, base = osp.split(path)
    return osp.join(folder, f'.{base}{TMP_TAG}{os.getpid()}')


def write_sample(root, name, mode, out):
    """Write one sample: every file to a temporary name first, then rename them, the voxel grid last.

    Args:
        root (str): Output root.
        name (str): Sample name.
        mode (str): ``'train'`` or ``'test'``.
        out (dict): Arrays from :func:`synthesize_sample`.
    """
    pending = []
    for key, folder in IMAGE_OUTPUTS.items():
        img = to_uint8(out[key])
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode('.png', img)
        if not ok:
            raise RuntimeError(f'cannot encode {key} of sample {name} as PNG')
        pending.append((osp.join(root, folder, f'{name}.png'), buf.tobytes()))
    arrays = dict(ARRAY_OUTPUTS, **(TEST_OUTPUTS if mode == 'test' else {}))
    arrays['voxel'] = VOXEL_FOLDER
    for key, folder in arrays.items():
        pending.append((osp.join(root, folder, f'{name}.npy'), out[key]))
    tmp_paths = []
    for path, content in pending:
        os.makedirs(osp.dirname(path), exist_ok=True)
        tmp = _tmp_path(path)
        with open(tmp, 'wb') as f:
            if isinstance(content, bytes):
                f.write(content)
            else:
                np.save(f, content)
        tmp_paths.append((tmp, path))
    for tmp, path in tmp_paths:
        os.replace(tmp, path)


def make_sample(task):
    """Make and write one sample (the worker function of the process pool).

    Args:
        task (dict): ``index``, ``name``, ``source``, ``flip``, ``root``, ``mode``, ``seed``, ``cfg``.

    Returns:
        dict: The sample's manifest record.
    """
    start = time.perf_counter()
    rng = np.random.default_rng([task['seed'], task['index']])
    img = flip_image(read_source(task['source']), task['flip'])
    out, params = synthesize_sample(img, rng, task['cfg'], task['mode'])
    write_sample(task['root'], task['name'], task['mode'], out)
    return {'name': task['name'], 'index': task['index'], 'seed': [task['seed'], task['index']],
            'source': osp.basename(task['source']), 'flip': task['flip'], 'mode': task['mode'], 'params': params,
            'config': _config_record(task['cfg']), 'seconds': round(time.perf_counter() - start, 3)}


def _config_record(cfg):
    """The JSON form of a configuration (tuples as lists), as stored in the manifest."""
    return json.loads(json.dumps(cfg, sort_keys=True))


def read_manifest(path):
    """Records of a manifest by sample name; a line cut by a kill (or otherwise unreadable) is ignored."""
    records = {}
    if not osp.exists(path):
        return records
    with open(path, encoding='utf-8') as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and 'name' in record:
                records[record['name']] = record
    return records


def write_manifest(path, records):
    """Rewrite the manifest, one JSON record per line sorted by sample index, atomically."""
    tmp = _tmp_path(path)
    with open(tmp, 'w', encoding='utf-8') as f:
        for record in sorted(records.values(), key=lambda r: r['index']):
            f.write(json.dumps(record, sort_keys=True) + '\n')
    os.replace(tmp, path)


def remove_stale_temporaries(root):
    """Delete temporary files of a killed earlier run (names ``.<file>.part-<pid>``)."""
    removed = 0
    for folder in [root] + [osp.join(root, f) for f in (*IMAGE_OUTPUTS.values(), *ARRAY_OUTPUTS.values(),
                                                        *TEST_OUTPUTS.values(), VOXEL_FOLDER)]:
        for path in glob.glob(osp.join(glob.escape(folder), f'.*{TMP_TAG}*')):
            os.remove(path)
            removed += 1
    return removed


def _init_worker(backend):
    cv2.setNumThreads(1)
    if backend == 'torch':
        import torch
        torch.set_num_threads(1)


def make_dataset(input_dir, output_dir, mode='train', seed=0, workers=None, limit=None, progress=True, **options):
    """Make (or complete) a synthetic low-light data set.

    Args:
        input_dir (str): Folder of linear source PNGs.
        output_dir (str): Output root (e.g. ``data/train``).
        mode (str): ``'train'`` (flip augmentation) or ``'test'`` (also trajectories and kernels).
        seed (int): Base seed; sample i uses ``numpy.random.default_rng([seed, i])``.
        workers (int | None): Worker processes; None uses every core, 1 runs in this process.
        limit (int | None): Make at most this many of the missing samples. Default: None (all).
        progress (bool): Show a tqdm progress bar. Default: True.
        **options: Overrides of ``DEFAULTS`` (``simulator`` merges key by key).

    Returns:
        dict: ``total``, ``skipped`` (already done), ``made`` (names made in this run), ``removed_temporaries``.
    """
    if mode not in ('train', 'test'):
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ValueError(f'make_dataset: unknown options {sorted(unknown)}; expected some of {sorted(DEFAULTS)}')
    cfg = {**DEFAULTS, **options, 'simulator': {**DEFAULTS['simulator'], **options.get('simulator', {})}}
    cfg['patch_grid'] = tuple(cfg['patch_grid'])
    if cfg['aps_downsample'] not in ('decimate', 'area'):
        raise ValueError(f"aps_downsample must be 'decimate' or 'area', got {cfg['aps_downsample']!r}")
    if cfg['noisy_rounding'] not in ('floor', 'round'):
        raise ValueError(f"noisy_rounding must be 'floor' or 'round', got {cfg['noisy_rounding']!r}")
    if cfg['sub_frames'] < 2:
        raise ValueError(f"sub_frames must be >= 2, got {cfg['sub_frames']}")
    plan = plan_samples(list_sources(input_dir), mode, cfg['trajectories'])
    os.makedirs(output_dir, exist_ok=True)
    removed = remove_stale_temporaries(output_dir)
    manifest_path = osp.join(output_dir, MANIFEST)
    records = read_manifest(manifest_path)
    planned = {entry['name'] for entry in plan}
    done = {entry['name'] for entry in plan if entry['name'] in records and
            all(osp.exists(p) for p in output_files(output_dir, entry['name'], mode))}
    records = {name: rec for name, rec in records.items() if name in done or name not in planned}
    current = _config_record(cfg)
    for name in sorted(done):
        old = records[name]
        if old.get('config') != current or old.get('seed') != [int(seed), old.get('index')]:
            raise ValueError(f'{manifest_path}: sample {name} was made with another seed or configuration '
                             f'(seed {old.get("seed")}, config {old.get("config")}); resume with the same options or '
                             f'write to a new output folder')
    write_manifest(manifest_path, records)
    todo = [dict(entry, root=output_dir, mode=mode, seed=int(seed), cfg=cfg) for entry in plan
            if entry['name'] not in done]
    if limit is not None:
        todo = todo[:limit]
    made = []
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    from tqdm import tqdm
    bar = tqdm(total=len(todo), unit='sample', disable=not progress, dynamic_ncols=True)
    with open(manifest_path, 'a', encoding='utf-8') as manifest:

        def record(rec):
            manifest.write(json.dumps(rec, sort_keys=True) + '\n')
            manifest.flush()
            records[rec['name']] = rec
            made.append(rec['name'])
            bar.update(1)

        if workers <= 1 or len(todo) <= 1:
            for task in todo:
                record(make_sample(task))
        else:
            import multiprocessing
            # spawn: forking a process that already runs threads (torch, tqdm) can deadlock; CUDA needs it too
            pool = multiprocessing.get_context('spawn').Pool(workers, initializer=_init_worker,
                                                             initargs=(cfg['backend'], ))
            with pool:
                for rec in pool.imap_unordered(make_sample, todo, chunksize=1):
                    record(rec)
    bar.close()
    write_manifest(manifest_path, records)
    return {'total': len(plan), 'skipped': len(done), 'made': made, 'removed_temporaries': removed}


def parse_args(argv=None):
    """Parse the command line.

    Args:
        argv (list[str] | None): Arguments; None reads ``sys.argv``.

    Returns:
        argparse.Namespace: The options.
    """
    parser = argparse.ArgumentParser(description='Make the synthetic low-light event deblurring data set.')
    parser.add_argument('--input', required=True, help='folder of linear source PNGs (sorted *.png)')
    parser.add_argument('--output', required=True, help='output root, e.g. data/train')
    parser.add_argument('--mode', required=True, choices=['train', 'test'])
    parser.add_argument('--seed', type=int, default=0, help='base seed; sample i uses default_rng([seed, i])')
    parser.add_argument('--workers', type=int, default=None, help='worker processes (default: all cores)')
    parser.add_argument('--limit', type=int, default=None, help='make at most this many missing samples')
    parser.add_argument('--trajectories', type=int, default=DEFAULTS['trajectories'], help='samples per source')
    parser.add_argument('--patch-grid', type=int, nargs=2, default=DEFAULTS['patch_grid'], metavar=('ROWS', 'COLS'))
    parser.add_argument('--sub-frames', type=int, default=DEFAULTS['sub_frames'])
    parser.add_argument('--num-bins', type=int, default=DEFAULTS['num_bins'])
    parser.add_argument('--shot-noise-every-step', action='store_true',
                        help='v2e-like shot noise in every step (reference: only in steps with events, §13 #9)')
    parser.add_argument('--aps-downsample', choices=['decimate', 'area'], default=DEFAULTS['aps_downsample'],
                        help='APS from RGB: reference decimation (aliasing) or area average (§13 #10)')
    parser.add_argument('--noisy-rounding', choices=['floor', 'round'], default=DEFAULTS['noisy_rounding'],
                        help='8-bit quantisation of noisy inputs: reference floor or round like the targets (§13 #10)')
    parser.add_argument('--refractory-period', type=float, default=0.0, help='DVS refractory period in seconds')
    parser.add_argument('--backend', choices=['numpy', 'torch'], default=DEFAULTS['backend'])
    parser.add_argument('--device', default=None, help='torch device of the torch back end, e.g. cuda:0')
    parser.add_argument('--no-progress', action='store_true')
    return parser.parse_args(argv)


def main(argv=None):
    """Command-line entry point: make the data set and print a summary.

    Args:
        argv (list[str] | None): Arguments; None reads ``sys.argv``.

    Returns:
        dict: The summary of :func:`make_dataset`.
    """
    args = parse_args(argv)
    summary = make_dataset(
        args.input, args.output, mode=args.mode, seed=args.seed, workers=args.workers, limit=args.limit,
        progress=not args.no_progress, trajectories=args.trajectories, patch_grid=tuple(args.patch_grid),
        sub_frames=args.sub_frames, num_bins=args.num_bins, aps_downsample=args.aps_downsample,
        noisy_rounding=args.noisy_rounding, backend=args.backend, device=args.device,
        simulator={'shot_noise_every_step': args.shot_noise_every_step,
                   'refractory_period_s': args.refractory_period})
    print(f"{summary['total']} samples: {len(summary['made'])} made, {summary['skipped']} already done"
          f" ({summary['removed_temporaries']} stale temporary files removed)")
    return summary


if __name__ == '__main__':
    main()
