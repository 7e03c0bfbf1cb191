"""The built-in end-to-end demo: data, training, evaluation, results table and picture, nothing downloaded.

1. Makes a small event-deblurring set from the sample images that ship with scikit-image: random crops move along
   random camera arcs, the project's DVS simulator turns the sub-frames into events, the blurry frame is their mean
   and the ground truth the middle sub-frame; written in EFNet's processed h5 layout to ``datasets/demo/`` (a second
   run reuses it). Each test source is also written as a raw-event recording in the event_utils layout,
   ``datasets/demo/recording/<source>.h5``: its samples are the frames of one recording (frame k exposed during
   ``[k * 0.04, k * 0.04 + 0.01]`` s), with their exposure windows and the very events the test set's SCER was
   computed from, ready for ``basicsr/infer.py --events``.
2. Trains a small EFNet through ``basicsr/train.py`` with ``options/train/Demo/EFNet_demo.yml``.
3. Evaluates the blurry input, EDI and the trained EFNet through ``basicsr/test.py``. EDI runs twice: with its
   threshold estimated per frame, as a user gets it (``options/test/Demo/EDI.yml``), and, labelled as the oracle,
   with the simulator's true threshold (``EDI_oracle.yml``).
4. Writes ``results/demo/results.md`` (PSNR / SSIM table) and ``results/demo/panels.png``.

``--quick`` runs under its own names (``datasets/demo_quick`` with its ``recording/``, ``experiments/demo_quick_EFNet``,
``results/demo_quick*``), so it never touches the full demo's data, weights or results.

Usage: ``python scripts/demo.py`` (about 4-5 minutes on a 2-core CPU); ``--quick`` is a one-minute smoke run.
"""
import argparse
import csv
import json
import os
import os.path as osp
import subprocess
import sys
import time

import cv2
import numpy as np
from tqdm import tqdm

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from basicsr.events import (Frame, concatenate_streams, efnet_frame, event_frame, event_mask, scer,  # noqa: E402
                             write_efnet_h5, write_event_h5)
from basicsr.models.edi_threshold import read_thresholds_csv, summarize_thresholds  # noqa: E402
from basicsr.synthesis import DVSSimulator  # noqa: E402
from basicsr.synthesis.blur_synthesis import arc_trajectory, event_blur_sample  # noqa: E402
from basicsr.utils.img_util import make_panel  # noqa: E402

SOURCES = {
    'train': ['astronaut', 'coffee', 'rocket', 'hubble_deep_field', 'immunohistochemistry', 'colorwheel', 'grass',
              'gravel', 'brick', 'moon'],
    'test': ['chelsea', 'camera', 'coins', 'retina'],
}
FULL = {'train_size': [96, 96], 'test_size': [128, 176], 'train_per_source': 12, 'test_per_source': 3,
        'subframes': 17, 'blur_length': [6.0, 16.0], 'threshold': 0.2, 'sigma_threshold': 0.02, 'num_bins': 6,
        'iters': 1000, 'wf': 16}
QUICK = dict(FULL, train_size=[48, 48], test_size=[40, 56], train_per_source=2, test_per_source=2, iters=4, wf=8)
# (table label, panel caption, results name, option file)
METHODS = [('Blurry input', 'blurry', 'demo_Blurry', 'options/test/Demo/Blurry.yml'),
           ('EDI (no learning, threshold estimated)', 'EDI', 'demo_EDI', 'options/test/Demo/EDI.yml'),
           ('EDI (oracle: the simulator\'s threshold)', 'EDI oracle', 'demo_EDI_oracle',
            'options/test/Demo/EDI_oracle.yml'),
           ('EFNet (trained here)', 'EFNet', 'demo_EFNet', 'options/test/Demo/EFNet.yml')]
# The samples of a recorded (test) source are the frames of one recording: frame k is exposed during
# [k * FRAME_PERIOD, k * FRAME_PERIOD + EXPOSURE] s (a 25 fps camera with a 10 ms exposure). Training samples are
# exposed during [0, EXPOSURE] s each (the SCER only sees times relative to its window).
FRAME_PERIOD, EXPOSURE = 0.04, 0.01


def source_image(name):
    """A scikit-image sample image as float32 BGR in [0.1, 0.95] (kept above the sensor's linear range).

    Args:
        name (str): Name of a ``skimage.data`` function shipped with the package.

    Returns:
        np.ndarray: (H, W, 3) image.
    """
    import skimage.data
    img = np.asarray(getattr(skimage.data, name)())
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3].astype(np.float32) / 255.0
    return np.ascontiguousarray(img[..., ::-1]) * 0.85 + 0.1


def random_crop(img, size, rng):
    """A random crop of ``size`` from ``img`` randomly rescaled (so crops show different detail levels)."""
    h, w = size
    scale = max(h / img.shape[0], w / img.shape[1]) * rng.uniform(1.0, 2.0)
    resized = cv2.resize(img, (max(w, round(img.shape[1] * scale)), max(h, round(img.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    y0 = rng.integers(0, resized.shape[0] - h + 1)
    x0 = rng.integers(0, resized.shape[1] - w + 1)
    return resized[y0:y0 + h, x0:x0 + w]


def make_sequence(name, split, cfg, seed, out_path, recording_path=None):
    """Writes one EFNet h5 file (one "sequence") of blurry/sharp/SCER/mask samples cut from one source image.

    Args:
        name (str): Source image name.
        split (str): ``'train'`` or ``'test'``.
        cfg (dict): Demo settings.
        seed (int): Base seed.
        out_path (str): Output h5 path.
        recording_path (str | None): Also write the sequence as an event_utils raw h5 recording here: the same
            blurry frames (``images``) and sharp frames (``sharp_images``) with their exposure windows (frame k
            during ``[k * FRAME_PERIOD, k * FRAME_PERIOD + EXPOSURE]``), and the events the SCER was computed from.
            Default: None.
    """
    img = source_image(name)
    size = cfg[f'{split}_size']
    frames, sharps, voxels, masks, streams, recorded, recorded_sharp = [], [], [], [], [], [], []
    for k in range(cfg[f'{split}_per_source']):
        rng = np.random.default_rng([seed, SOURCES[split].index(name), k, split == 'test'])
        sharp = random_crop(img, size, rng)
        traj = arc_trajectory(rng, rng.uniform(*cfg['blur_length']), cfg['subframes'])
        sim = DVSSimulator(pos_thres=cfg['threshold'], neg_thres=cfg['threshold'], sigma_thres=cfg['sigma_threshold'],
                           cutoff_hz=0, leak_rate_hz=0, shot_noise_rate_hz=0)
        t0 = k * FRAME_PERIOD if recording_path is not None else 0.0
        sample = event_blur_sample(sharp, traj, rng, exposure=(t0, t0 + EXPOSURE), simulator=sim)
        ev = sample['events']
        voxel = scer(ev.x, ev.y, ev.t, ev.p, cfg['num_bins'], size[0], size[1])
        blur8, sharp8 = (np.round(np.clip(sample[key], 0, 1) * 255).astype(np.uint8) for key in ('blur', 'sharp'))
        frames.append(efnet_frame(blur8))
        sharps.append(efnet_frame(sharp8))
        voxels.append(voxel)
        masks.append(event_mask(voxel))
        streams.append(ev)
        start, end = sample['exposure']
        recorded.append(Frame(blur8, (start + end) / 2, start, end))
        recorded_sharp.append(Frame(sharp8, (start + end) / 2, start, end))
    write_efnet_h5(out_path, frames, sharps, voxels, masks, tuple(size))
    if recording_path is not None:
        write_event_h5(recording_path, concatenate_streams(streams), recorded, recorded_sharp,
                       source=f'scripts/demo.py: {split} source {name}')


def make_data(data_root, cfg, seed):
    """Makes (or reuses) ``<data_root>/{train,test}/<source>.h5`` and the recordings ``<data_root>/recording/<test
    source>.h5`` (see :func:`make_sequence`).

    Args:
        data_root (str): Output folder, e.g. ``datasets/demo``.
        cfg (dict): Demo settings (recorded in ``manifest.json``; other settings remake the data).
        seed (int): Base seed.
    """
    manifest_path = osp.join(data_root, 'manifest.json')
    wanted = {'seed': seed, 'settings': {k: cfg[k] for k in sorted(cfg) if k not in ('iters', 'wf')}}
    paths = {split: [osp.join(data_root, split, f'{name}.h5') for name in SOURCES[split]] for split in SOURCES}
    paths['recording'] = [osp.join(data_root, 'recording', f'{name}.h5') for name in SOURCES['test']]
    if osp.isfile(manifest_path) and all(osp.isfile(p) for ps in paths.values() for p in ps):
        with open(manifest_path, encoding='utf-8') as f:
            if json.load(f) == wanted:
                print(f'Reusing the demo data in {data_root}', flush=True)
                return
    jobs = [(name, split, paths[split][i], paths['recording'][i] if split == 'test' else None)
            for split in SOURCES for i, name in enumerate(SOURCES[split])]
    for folder in paths:
        os.makedirs(osp.join(data_root, folder), exist_ok=True)
    for name, split, path, recording_path in tqdm(jobs, desc='Making demo data', unit='sequence'):
        make_sequence(name, split, cfg, seed, path, recording_path)
    tmp = f'{manifest_path}.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(wanted, f, indent=1)
    os.replace(tmp, manifest_path)


def run(cmd):
    """Runs an entry point with live output; stops the demo if it fails."""
    print('\n$ ' + ' '.join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=REPO)
    if result.returncode != 0:
        sys.exit(f'demo: step failed with exit code {result.returncode}: {" ".join(cmd)}')


def read_scores(csv_path):
    """Per-image scores and the mean row of a ``test.py`` metrics CSV."""
    with open(csv_path, newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    per_image = {r['image']: {k: float(v) for k, v in r.items() if k != 'image' and v} for r in rows[:-1]}
    return per_image, {k: float(v) for k, v in rows[-1].items() if k != 'image' and v}


def results_table(means):
    """A Markdown table of the mean scores per method."""
    lines = ['| method | PSNR (dB) | SSIM | SSIM 3-D (EFNet\'s) |', '|---|---|---|---|']
    for label, m in means.items():
        lines.append(f'| {label} | {m["psnr"]:.2f} | {m["ssim"]:.4f} | {m["ssim_3d"]:.4f} |')
    return '\n'.join(lines)


def run_name(name, quick):
    """The experiment or results name of a demo step: ``demo_X``, or ``demo_quick_X`` for ``--quick``.

    Args:
        name (str): Name in the demo's option files, starting with ``demo``.
        quick (bool): The quick run.

    Returns:
        str: The name the run uses.
    """
    return 'demo_quick' + name[len('demo'):] if quick else name


def panels(data_root, results_root, scores, max_rows=4, quick=False):
    """Rows of blurry | events | each method | sharp for the first test images (BGR uint8).

    Args:
        data_root (str): Demo data folder.
        results_root (str): Base of ``results/<name>/``.
        scores (dict): Method label → per-image scores.
        max_rows (int): Number of rows. Default: 4.
        quick (bool): Read the quick run's results (see :func:`run_name`). Default: False.

    Returns:
        np.ndarray: The picture.
    """
    import h5py
    rows = []
    for name in SOURCES['test']:
        with h5py.File(osp.join(data_root, 'test', f'{name}.h5'), 'r') as f:
            blurry = f['images/image000000000'][()].transpose(1, 2, 0)
            sharp = f['sharp_images/image000000000'][()].transpose(1, 2, 0)
            voxel = f['voxels/voxel000000000'][()]
        net = voxel[-1] - voxel[0]  # SCER: total signed events of the exposure
        yy, xx = np.nonzero(net)
        events = np.ascontiguousarray(event_frame(xx, yy, np.sign(net[yy, xx]), *net.shape)[..., ::-1])
        image_name = f'{name}/0000'
        tiles, labels = [blurry, events], ['blurry', 'events']
        for label, caption, result_name, _ in METHODS[1:]:
            tiles.append(cv2.imread(osp.join(results_root, run_name(result_name, quick), 'visualization',
                                             'demo-test', f'{image_name}.png')))
            labels.append(f'{caption} {scores[label].get(image_name, {}).get("psnr", float("nan")):.1f}dB')
        rows.append(np.pad(make_panel(tiles + [sharp], labels + ['sharp']), ((0, 4), (0, 0), (0, 0)),
                           constant_values=255))
        if len(rows) == max_rows:
            break
    return np.concatenate(rows, 0)


def main(argv=None):
    """Runs the whole demo.

    Args:
        argv (list[str] | None): Arguments instead of ``sys.argv[1:]``. Default: None.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='tiny data and 4 iterations (smoke test), under its own names (demo_quick*)')
    parser.add_argument('--root', default=REPO, help='base of datasets/, experiments/, results/ (default: repo)')
    parser.add_argument('--iters', type=int, default=None, help='training iterations (default 1000; quick 4)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the demo data')
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.iters is not None:
        cfg['iters'] = args.iters
    root = osp.abspath(args.root)
    data_root = osp.join(root, 'datasets', 'demo' + ('_quick' if args.quick else ''))
    start = time.time()

    make_data(data_root, cfg, args.seed)
    python = sys.executable
    common = [f'path:root={root}']
    quick = args.quick
    run([python, 'basicsr/train.py', '-opt', 'options/train/Demo/EFNet_demo.yml', '--force_yml', *common,
         f'name={run_name("demo_EFNet", quick)}',
         f'datasets:train:dataroot={data_root}/train', f'network_g:wf={cfg["wf"]}', f'train:total_iter={cfg["iters"]}',
         f'train:scheduler:T_max={cfg["iters"]}', f'logger:save_checkpoint_freq={max(cfg["iters"] // 3, 1)}',
         f'logger:print_freq={max(min(50, cfg["iters"] // 10), 1)}',
         f'datasets:train:crop_size={min(64, *cfg["train_size"])}'])
    weights = osp.join(root, 'experiments', run_name('demo_EFNet', quick), 'models', 'net_g_latest.pth')
    scores, means = {}, {}
    for label, _, name, opt_file in METHODS:
        extra = [f'path:pretrain_network_g={weights}', f'network_g:wf={cfg["wf"]}'] if 'EFNet' in name else []
        run([python, 'basicsr/test.py', '-opt', opt_file, '--force_yml', *common, f'name={run_name(name, quick)}',
             f'datasets:test:dataroot={data_root}/test', *extra])
        scores[label], means[label] = read_scores(osp.join(root, 'results', run_name(name, quick),
                                                           'demo-test_metrics.csv'))

    out_dir = osp.join(root, 'results', run_name('demo', quick))
    os.makedirs(out_dir, exist_ok=True)
    table = results_table(means)
    n_test = len(next(iter(scores.values())))
    thresholds = read_thresholds_csv(osp.join(root, 'results', run_name('demo_EDI', quick),
                                              'demo-test_thresholds.csv'))
    edi_note = f'EDI\'s estimated thresholds: {summarize_thresholds(list(thresholds.values()))}.'
    report = (f'# Demo results\n\nMean over {n_test} test frames made from scikit-image samples '
              f'({cfg["test_size"][0]}×{cfg["test_size"][1]}, simulated events, threshold {cfg["threshold"]} with a '
              f'per-pixel spread of {cfg["sigma_threshold"]}); EFNet wf={cfg["wf"]} trained {cfg["iters"]} iterations '
              'on CPU. PSNR on uint8 RGB; SSIM is the standard (2-D) one; SSIM 3-D is the variant EFNet\'s papers '
              f'report. {edi_note} The oracle row is given the simulator\'s threshold, which a real recording does '
              'not offer.\n\n' + table + '\n')
    with open(osp.join(out_dir, 'results.md'), 'w', encoding='utf-8') as f:
        f.write(report)
    picture = panels(data_root, osp.join(root, 'results'), scores, quick=quick)
    cv2.imwrite(osp.join(out_dir, 'panels.png'), picture)
    print('\n' + table + '\n' + edi_note)
    print(f'\nDemo finished in {time.time() - start:.0f} s.\nTable:   {osp.join(out_dir, "results.md")}\n'
          f'Picture: {osp.join(out_dir, "panels.png")}\nPer-image scores and images: {osp.join(root, "results")}/'
          f'{run_name("demo", quick)}_*/\nRaw-event recordings of the test scenes (for basicsr/infer.py --events): '
          f'{osp.join(data_root, "recording")}/\nTrained EFNet: {weights}')


if __name__ == '__main__':
    main()
