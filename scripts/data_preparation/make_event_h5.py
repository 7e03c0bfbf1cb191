"""Make EFNet processed h5 files (SCER voxels, event masks, frames) from raw event h5 files or from video frames.

Raw mode (default): event_utils raw h5 files (``events/xs, ys, ts, ps`` + ``images``; one file per sequence, or a
folder of them) → one processed h5 per sequence (layout of ``basicsr.events.efnet_h5``; ``efnet.md`` §6.3). The
events of each frame's window are read through the streaming reader and turned into SCER (``basicsr.events.scer``,
6 channels, 7 with ``--keep-middle``). Windows (``--window``):

* ``gopro``: from the midpoint of the previous and current frame timestamps to the midpoint of the current and
  next ones, [start, end); the first and last frames are dropped (processed index i = raw image i + 1).
* ``exposure`` (REBlur and other real data): [exposure_start, exposure_end] from each image's attributes; every
  frame kept.

Optional EFNet noise recipe (``--add-noise``; ``efnet.md`` §5.7): N(0, 1) on 5 % of the voxel elements, then hot
pixels; drawn from ``numpy.random.default_rng([seed, crc32(sequence name), 0])`` so a sequence is reproducible
whatever the file order or number of workers. The event mask is computed after the noise (``--mask-order after``,
the reference order of the GoPro release) or before it. ``--crop-rows N`` keeps the top N rows (REBlur: 262 → 260).

Simulate mode (``--simulate``): a folder with one sub-folder of PNG frames per sequence (e.g. GoPro at 240 fps) →
events from ``basicsr.synthesis.simulator.DVSSimulator`` → blurry frames as the mean of ``--blur-frames`` consecutive
sharp frames (non-overlapping groups; ground truth = the middle frame of the group) → a raw event h5 per sequence
(``--raw-output``, default ``<output>/raw``) and its processed h5 with exposure windows. Frame ``i`` is at time
``i / fps``; a blurry frame's exposure is [t_first − 0.5/fps, t_last + 0.5/fps]. For the simulation each frame is
converted to linear intensity: gray luma of the stored values in [0, 1], then the inverse sRGB transfer function
(``--gamma srgb``, default; ``none`` takes the values as linear), scaled to the simulator's 0-255 digital numbers.
Blur is averaged on the stored values (rounded to uint8). Simulator defaults are ESIM-like (thresholds 0.2 with
0.03 mismatch, no photoreceptor low-pass, leak or shot noise); every one is a command-line option.

Outputs are written under temporary names and renamed; existing outputs are skipped unless ``--overwrite``.

Examples::

    python scripts/data_preparation/make_event_h5.py --input GOPRO_rawevents/train --output GOPRO/train \
        --window gopro --add-noise --seed 0 --workers 8
    python scripts/data_preparation/make_event_h5.py --input REBlur_rawevents/test --output REBlur/test \
        --window exposure --crop-rows 260
    python scripts/data_preparation/make_event_h5.py --simulate --input my_240fps_videos --output my_data \
        --blur-frames 7 --fps 240
"""
import argparse
import glob
import os
import os.path as osp
import sys
import zlib

import numpy as np
import yaml

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
# Spawned pool workers import the task functions by this module's name, whoever imported it.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from basicsr.events import EventStream, Frame, H5EventReader, event_mask, scer, write_event_h5  # noqa: E402
from basicsr.events.augment import add_hot_pixels, add_voxel_noise  # noqa: E402
from basicsr.events.denoise import check_denoise_options, denoise_events  # noqa: E402
from basicsr.events.efnet_h5 import EFNetH5Writer, efnet_frame  # noqa: E402
from basicsr.events.stream import EventFormatError  # noqa: E402
from basicsr.utils.parallel import imap_tasks  # noqa: E402

WINDOWS = ('gopro', 'exposure')
H5_SUFFIXES = ('.h5', '.hdf5')
SIM_DEFAULTS = {'pos_thres': 0.2, 'neg_thres': 0.2, 'sigma_thres': 0.03, 'cutoff_hz': 0.0, 'leak_rate_hz': 0.0,
                'shot_noise_rate_hz': 0.0, 'refractory_period_s': 0.0}


def sequence_name(path):
    """Sequence name of a file: its basename up to the first ``.`` (as ``H5ImageDataset`` names sequences)."""
    return osp.basename(osp.normpath(path)).split('.')[0]


def sequence_rng(seed, name, purpose=0):
    """The generator of one sequence: ``default_rng([seed, crc32(name), purpose])`` (stable across runs and workers).

    Args:
        seed (int): Base seed.
        name (str): Sequence name.
        purpose (int): 0 for the voxel noise, 1 for the event simulation (independent streams). Default: 0.

    Returns:
        numpy.random.Generator: The generator.
    """
    return np.random.default_rng([int(seed), zlib.crc32(name.encode('utf-8')), int(purpose)])


def list_raw_files(path):
    """The raw h5 files of ``--input``: the file itself, or the sorted ``*.h5``/``*.hdf5`` of a folder.

    Args:
        path (str): File or folder.

    Returns:
        list[str]: Paths.
    """
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'--input: {path} is neither a raw event h5 file nor a folder')
    files = sorted(osp.join(path, n) for n in os.listdir(path) if n.endswith(H5_SUFFIXES) and not n.startswith('.'))
    if not files:
        raise FileNotFoundError(f'--input: no .h5/.hdf5 files in the folder {path}')
    names = [sequence_name(f) for f in files]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f'--input {path}: several files map to the same sequence name(s) {dup} (name = basename '
                         'up to the first ".")')
    return files


def frame_windows(reader, window):
    """Event windows of the frames kept in the processed file.

    Args:
        reader (H5EventReader): The open raw file.
        window (str): ``'gopro'`` or ``'exposure'``.

    Returns:
        list[tuple[int, float, float, str]]: ``(raw image index, start, end, closed)`` per processed sample.
    """
    path = reader.path
    n = reader.num_frames('images')
    if n == 0:
        raise EventFormatError(f'{path}: no "images" group with frames (needed for the event windows).')
    names = reader.frame_names('images')
    if window == 'gopro':
        if n < 3:
            raise EventFormatError(f'{path}: --window gopro needs at least 3 images (first and last are dropped), '
                                   f'found {n}.')
        ts = []
        for i in range(n):
            attrs = reader.frame_attrs(i)
            if 'timestamp' not in attrs:
                raise EventFormatError(f'{path}: "images/{names[i]}" has no "timestamp" attribute (needed by '
                                       '--window gopro).')
            ts.append(float(attrs['timestamp']))
        return [(i, 0.5 * (ts[i - 1] + ts[i]), 0.5 * (ts[i] + ts[i + 1]), 'left') for i in range(1, n - 1)]
    if window == 'exposure':
        out = []
        for i in range(n):
            attrs = reader.frame_attrs(i)
            for key in ('exposure_start', 'exposure_end'):
                if key not in attrs:
                    raise EventFormatError(f'{path}: "images/{names[i]}" has no "{key}" attribute (needed by '
                                           '--window exposure; use --window gopro for frames without exposure '
                                           'times).')
            start, end = float(attrs['exposure_start']), float(attrs['exposure_end'])
            if not end >= start:
                raise EventFormatError(f'{path}: "images/{names[i]}" exposure_end {end} < exposure_start {start}.')
            out.append((i, start, end, 'both'))
        return out
    raise ValueError(f'--window must be one of {WINDOWS}, got {window!r}')


def window_voxel(stream, num_bins, keep_middle, crop_rows):
    """SCER of one window's events (full sensor), then the top ``crop_rows`` rows.

    Args:
        stream (EventStream): The window's events.
        num_bins (int): Even number of SCER bins.
        keep_middle (bool): Insert the zero middle channel.
        crop_rows (int | None): Rows kept.

    Returns:
        np.ndarray: float32 (C, H', W).
    """
    voxel = scer(stream.x, stream.y, stream.t, stream.p, num_bins, stream.height, stream.width,
                 keep_middle=keep_middle)
    return voxel[:, :crop_rows] if crop_rows else voxel


def make_mask_and_noise(voxel, rng, add_noise, mask_order, noise):
    """Applies the optional EFNet noise recipe and computes the event mask in the chosen order.

    Args:
        voxel (np.ndarray): Clean SCER (C, H, W).
        rng (numpy.random.Generator | None): The sequence's generator (needed with ``add_noise``).
        add_noise (bool): Apply ``add_voxel_noise`` then ``add_hot_pixels``.
        mask_order (str): ``'after'`` (mask of the noisy voxel; GoPro reference) or ``'before'`` the noise.
        noise (dict): ``noise_std``, ``noise_fraction``, ``hot_pixel_range``, ``hot_pixel_fraction``.

    Returns:
        tuple[np.ndarray, np.ndarray]: The stored voxel (float32) and the mask (uint8 (H, W) in {0, 1}).
    """
    if mask_order not in ('after', 'before'):
        raise ValueError(f"--mask-order must be 'after' or 'before', got {mask_order!r}")
    mask = event_mask(voxel) if mask_order == 'before' else None
    if add_noise:
        voxel = add_voxel_noise(voxel, rng, noise_std=noise['noise_std'], noise_fraction=noise['noise_fraction'])
        voxel = add_hot_pixels(voxel, rng, hot_pixel_range=noise['hot_pixel_range'],
                               hot_pixel_fraction=noise['hot_pixel_fraction'])
    if mask is None:
        mask = event_mask(voxel)
    return voxel.astype(np.float32, copy=False), mask


NOISE_DEFAULTS = {'noise_std': 1.0, 'noise_fraction': 0.05, 'hot_pixel_range': 20, 'hot_pixel_fraction': 2e-5}


def convert_raw(raw_path, out_path, window='gopro', num_bins=6, keep_middle=False, crop_rows=None, channels=3,
                add_noise=False, mask_order='after', seed=0, noise=None, denoise=None):
    """Converts one event_utils raw h5 file to an EFNet processed h5 file (written atomically).

    Args:
        raw_path (str): Raw event h5 file.
        out_path (str): Processed h5 file to write.
        window (str): ``'gopro'`` (midpoints of neighbouring frames; first/last dropped) or ``'exposure'``.
        num_bins (int): SCER bins (even). Default: 6.
        keep_middle (bool): 7-channel SCER with the zero middle channel. Default: False.
        crop_rows (int | None): Keep the top rows of frames, voxels and masks. Default: None.
        channels (int): Frame channels (gray replicated to 3; colour to luma for 1). Default: 3.
        add_noise (bool): EFNet noise recipe. Default: False.
        mask_order (str): Mask ``'after'`` or ``'before'`` the noise. Default: ``'after'``.
        seed (int): Base seed of the noise. Default: 0.
        noise (dict | None): Overrides of ``NOISE_DEFAULTS``. Default: None.
        denoise (dict | None): Event denoising of each window before the SCER, options of
            :func:`basicsr.events.denoise.denoise_events`. Default: None (every event).

    Returns:
        dict: ``seq``, ``output``, ``samples``, ``events`` (events used in the windows, after denoising).
    """
    noise = {**NOISE_DEFAULTS, **(noise or {})}
    check_denoise_options(denoise, '--denoise')
    seq = sequence_name(out_path)
    rng = sequence_rng(seed, seq) if add_noise else None
    used = 0
    with H5EventReader(raw_path) as reader:
        height, width = reader.height, reader.width
        if crop_rows is not None and not 0 < int(crop_rows) <= height:
            raise ValueError(f'{raw_path}: --crop-rows {crop_rows} must be in [1, {height}] (sensor height).')
        out_h = int(crop_rows) if crop_rows else height
        windows = frame_windows(reader, window)
        n_img = reader.num_frames('images')
        n_sharp = reader.num_frames('sharp_images')
        if n_sharp and n_sharp != n_img:
            raise EventFormatError(f'{raw_path}: "sharp_images" holds {n_sharp} frames but "images" {n_img}.')
        groups = ('images', 'sharp_images') if n_sharp else ('images', )
        names = {g: reader.frame_names(g) for g in groups}
        with EFNetH5Writer(out_path, (out_h, width)) as writer:
            for idx, start, end, closed in windows:
                stream = reader.read_window(start, end, closed=closed)
                if denoise:
                    stream = EventStream(*denoise_events(stream.x, stream.y, stream.t, stream.p, height, width,
                                                         denoise), height, width)
                used += len(stream)
                voxel = window_voxel(stream, num_bins, keep_middle, out_h if crop_rows else None)
                voxel, mask = make_mask_and_noise(voxel, rng, add_noise, mask_order, noise)
                frames = {}
                for g in groups:
                    frames[g] = _processed_frame(reader.read_frame(idx, g).image, channels, out_h, width,
                                                 f'{raw_path} {g}/{names[g][idx]}')
                writer.add(frames['images'], voxel, mask, frames.get('sharp_images'))
    return {'seq': seq, 'output': out_path, 'samples': len(windows), 'events': used}


def _processed_frame(image, channels, out_h, width, where):
    frame = efnet_frame(image, channels, where=where)
    if frame.shape[2] != width or frame.shape[1] < out_h:
        raise EventFormatError(f'{where}: frame of shape {frame.shape[1:]} does not match the sensor '
                               f'(at least {out_h} rows, {width} columns).')
    return np.ascontiguousarray(frame[:, :out_h])


# ----------------------------------------------------------------------------------------------- simulate mode

def list_frame_sequences(path):
    """The sequences of ``--simulate --input``: sorted sub-folders holding ``*.png`` frames.

    Args:
        path (str): Root folder.

    Returns:
        list[tuple[str, list[str]]]: ``(name, sorted frame paths)`` per sequence.
    """
    if not osp.isdir(path):
        raise FileNotFoundError(f'--input: folder {path} does not exist (expected one sub-folder of PNG frames per '
                                'sequence)')
    seqs = []
    for name in sorted(os.listdir(path)):
        folder = osp.join(path, name)
        if name.startswith('.') or not osp.isdir(folder):
            continue
        frames = sorted(glob.glob(osp.join(glob.escape(folder), '*.png')))
        if frames:
            seqs.append((name, frames))
    if not seqs:
        raise FileNotFoundError(f'--input: no sub-folder of {path} holds *.png frames (expected <input>/<sequence>/'
                                '*.png)')
    return seqs


def read_png(path):
    """Reads a PNG frame as stored (uint8 BGR (H, W, 3) or gray (H, W)); 16-bit frames are scaled to 8 bits."""
    import cv2
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f'{path}: cannot be read as an image')
    if img.dtype == np.uint16:
        img = np.rint(img / 257.0).astype(np.uint8)
    if img.dtype != np.uint8:
        raise ValueError(f'{path}: expected an 8- or 16-bit PNG, got dtype {img.dtype}')
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    return img


def linear_intensity(img, gamma='srgb'):
    """Linear intensity in the simulator's digital numbers (0-255) of a stored 8-bit frame.

    Gray luma (OpenCV BGR→gray weights) of the values / 255, then the inverse sRGB transfer function for
    ``gamma='srgb'`` (identity for ``'none'``), times 255.

    Args:
        img (np.ndarray): uint8 (H, W) or (H, W, 3) BGR.
        gamma (str): ``'srgb'`` or ``'none'``. Default: ``'srgb'``.

    Returns:
        np.ndarray: float64 (H, W).
    """
    v = np.asarray(img, dtype=np.float64) / 255.0
    if v.ndim == 3:
        v = v[..., 0] * 0.114 + v[..., 1] * 0.587 + v[..., 2] * 0.299
    if gamma == 'srgb':
        v = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055)**2.4)
    elif gamma != 'none':
        raise ValueError(f"--gamma must be 'srgb' or 'none', got {gamma!r}")
    return v * 255.0


def blur_groups(num_frames, blur_frames):
    """Frame indices of each blurry frame: non-overlapping groups of ``blur_frames`` (a short tail is dropped)."""
    return [list(range(k, k + blur_frames)) for k in range(0, num_frames - blur_frames + 1, blur_frames)]


def simulate_sequence(name, frame_paths, raw_path, blur_frames=7, fps=240.0, gamma='srgb', seed=0, simulator=None):
    """Simulates events on a sequence of sharp frames and writes the raw event h5 with blurry and sharp frames.

    Args:
        name (str): Sequence name (seeds the simulator with ``default_rng([seed, crc32(name), 1])``).
        frame_paths (list[str]): Sorted PNG frames.
        raw_path (str): Raw event h5 to write (atomically).
        blur_frames (int): Sharp frames averaged per blurry frame. Default: 7.
        fps (float): Frame rate of the sharp frames. Default: 240.
        gamma (str): Linearisation for the simulator (see :func:`linear_intensity`). Default: ``'srgb'``.
        seed (int): Base seed. Default: 0.
        simulator (dict | None): ``DVSSimulator`` keyword arguments (overrides of ``SIM_DEFAULTS``).

    Returns:
        dict: ``events`` (number simulated) and ``blurry`` (number of blurry frames).
    """
    from basicsr.synthesis.simulator import DVSSimulator
    if blur_frames < 1:
        raise ValueError(f'--blur-frames must be >= 1, got {blur_frames}')
    if not fps > 0:
        raise ValueError(f'--fps must be > 0, got {fps}')
    groups = blur_groups(len(frame_paths), blur_frames)
    if not groups or len(frame_paths) < 2:
        raise ValueError(f'sequence {name}: {len(frame_paths)} frames, fewer than --blur-frames {blur_frames} (or '
                         'fewer than 2)')
    sim = DVSSimulator(**{**SIM_DEFAULTS, **(simulator or {})})
    rng = sequence_rng(seed, name, purpose=1)
    times = np.arange(len(frame_paths)) / float(fps)
    parts, group_of, acc, blurry, sharp = {'x': [], 'y': [], 't': [], 'p': []}, {}, {}, [], []
    for g, group in enumerate(groups):
        for i in group:
            group_of[i] = g
    shape = None
    for i, path in enumerate(frame_paths):
        img = read_png(path)
        if shape is None:
            shape = img.shape
        elif img.shape != shape:
            raise ValueError(f'{path}: frame of shape {img.shape} differs from the first frame {shape} of {name}')
        lin = linear_intensity(img, gamma)
        if i == 0:
            sim.reset(lin, times[0], rng)
        else:
            events = sim.step(lin, times[i])
            # compact dtypes right away: a long sequence holds many events
            for key, dtype in (('x', np.uint16), ('y', np.uint16), ('t', np.float64), ('p', np.int8)):
                parts[key].append(np.asarray(events[key]).astype(dtype, copy=False))
        g = group_of.get(i)
        if g is None:
            continue
        acc[g] = acc.get(g, 0) + img.astype(np.float64)
        group = groups[g]
        if i == group[len(group) // 2]:
            sharp.append(Frame(img, float(times[i])))
        if i == group[-1]:
            mean = np.rint(acc.pop(g) / len(group)).astype(np.uint8)
            mid = times[group[len(group) // 2]]
            blurry.append(Frame(mean, float(mid), float(times[group[0]] - 0.5 / fps),
                                float(times[group[-1]] + 0.5 / fps)))
    height, width = shape[:2]
    stream = EventStream(*(np.concatenate(parts[k]) for k in ('x', 'y', 't', 'p')), height, width)
    write_event_h5(raw_path, stream, frames=blurry, sharp_frames=sharp, source=f'make_event_h5 --simulate {name}')
    return {'events': len(stream), 'blurry': len(blurry)}


# ----------------------------------------------------------------------------------------------- driver

def _raw_task(task):
    if not task['overwrite'] and osp.exists(task['output']):
        return {'seq': sequence_name(task['output']), 'output': task['output'], 'skipped': True}
    result = convert_raw(task['input'], task['output'], **task['options'])
    return dict(result, skipped=False)


def _simulate_task(task):
    out, raw = task['output'], task['raw_output']
    if not task['overwrite'] and osp.exists(out) and osp.exists(raw):
        return {'seq': task['name'], 'output': out, 'raw_output': raw, 'skipped': True}
    sim = {}
    if task['overwrite'] or not osp.exists(raw):
        sim = simulate_sequence(task['name'], task['frames'], raw, **task['sim_options'])
    result = convert_raw(raw, out, **dict(task['options'], window='exposure'))
    return dict(result, raw_output=raw, skipped=False, simulated=sim)


def remove_stale_temporaries(folder):
    """Deletes temporary files of a killed earlier run in an output folder (``.<name>.h5.tmp*``).

    Args:
        folder (str): Output folder.

    Returns:
        int: Number of files removed.
    """
    removed = 0
    if osp.isdir(folder):
        # EFNetH5Writer: .<name>.h5.tmp-<pid>; write_event_h5: .<name>.h5.tmp<pid>
        for path in glob.glob(osp.join(glob.escape(folder), '.*.h5.tmp*')):
            os.remove(path)
            removed += 1
    return removed


def make_event_h5(input_path, output_dir, simulate=False, raw_output=None, overwrite=False, workers=1,
                  progress=True, blur_frames=7, fps=240.0, gamma='srgb', simulator=None, **options):
    """Makes the processed EFNet h5 files of every sequence (and, with ``simulate``, the raw event h5 files).

    Args:
        input_path (str): Raw h5 file or folder (raw mode); folder of PNG sequence folders (simulate mode).
        output_dir (str): Folder of the processed files ``<seq>.h5``.
        simulate (bool): Simulate events from frames. Default: False.
        raw_output (str | None): Folder of the simulated raw files. Default: ``<output_dir>/raw``.
        overwrite (bool): Remake existing outputs. Default: False.
        workers (int | None): Processes (None: all cores). Default: 1.
        progress (bool): tqdm progress bar. Default: True.
        blur_frames (int): Simulate mode: sharp frames per blurry frame. Default: 7.
        fps (float): Simulate mode: frame rate. Default: 240.
        gamma (str): Simulate mode: linearisation. Default: ``'srgb'``.
        simulator (dict | None): Simulate mode: ``DVSSimulator`` options. Default: None.
        **options: :func:`convert_raw` options (``window``, ``num_bins``, ``keep_middle``, ``crop_rows``,
            ``channels``, ``add_noise``, ``mask_order``, ``seed``, ``noise``, ``denoise``).

    Returns:
        list[dict]: One record per sequence, sorted by name (``skipped`` True for outputs that existed).
    """
    os.makedirs(output_dir, exist_ok=True)
    remove_stale_temporaries(output_dir)
    if simulate:
        raw_output = raw_output or osp.join(output_dir, 'raw')
        os.makedirs(raw_output, exist_ok=True)
        remove_stale_temporaries(raw_output)
        sim_options = {'blur_frames': int(blur_frames), 'fps': float(fps), 'gamma': gamma,
                       'seed': int(options.get('seed', 0)), 'simulator': simulator}
        tasks = [{'name': name, 'frames': frames, 'output': osp.join(output_dir, f'{name}.h5'),
                  'raw_output': osp.join(raw_output, f'{name}.h5'), 'overwrite': overwrite, 'options': options,
                  'sim_options': sim_options} for name, frames in list_frame_sequences(input_path)]
        func, desc = _simulate_task, 'simulate'
    else:
        tasks = [{'input': f, 'output': osp.join(output_dir, f'{sequence_name(f)}.h5'), 'overwrite': overwrite,
                  'options': options} for f in list_raw_files(input_path)]
        func, desc = _raw_task, 'make_event_h5'
    results = list(imap_tasks(func, tasks, workers=workers, progress=progress, desc=desc, unit='seq'))
    return sorted(results, key=lambda r: r['seq'])


def parse_args(argv=None):
    """Parses the command line.

    Args:
        argv (list[str] | None): Arguments; None reads ``sys.argv``.

    Returns:
        argparse.Namespace: The options.
    """
    parser = argparse.ArgumentParser(description='Make EFNet processed h5 files (SCER, masks, frames) from raw '
                                     'event h5 files, or simulate them from high-frame-rate PNG sequences.')
    parser.add_argument('--input', required=True, help='raw event h5 file or folder; with --simulate a folder of '
                        'sequence folders of PNG frames')
    parser.add_argument('--output', required=True, help='folder of the processed <seq>.h5 files')
    parser.add_argument('--window', choices=WINDOWS, default='gopro',
                        help='event window per frame: gopro (midpoints of neighbouring frames, first/last frame '
                        'dropped) or exposure (exposure_start/end attributes, all frames). --simulate always uses '
                        'exposure')
    parser.add_argument('--num-bins', type=int, default=6, help='SCER bins (even)')
    parser.add_argument('--keep-middle', action='store_true', help='7-channel SCER with the zero middle channel')
    parser.add_argument('--crop-rows', type=int, default=None, help='keep the top N rows (REBlur: 260 of 262)')
    parser.add_argument('--channels', type=int, choices=[1, 3], default=3, help='frame channels (gray replicated)')
    parser.add_argument('--add-noise', action=argparse.BooleanOptionalAction, default=False,
                        help='EFNet noise recipe on the voxels (5%% N(0,1) elements + hot pixels)')
    parser.add_argument('--mask-order', choices=['after', 'before'], default='after',
                        help='event mask of the noisy voxel (after; reference GoPro order) or of the clean one')
    parser.add_argument('--seed', type=int, default=0,
                        help='base seed; sequence s draws from default_rng([seed, crc32(s), purpose])')
    parser.add_argument('--denoise', action='append', metavar='KEY=VALUE',
                        help='denoise each window\'s events first, repeatable: ba_window=0.01 hot_pixels=true '
                        '(basicsr/events/denoise.py)')
    parser.add_argument('--workers', type=int, default=1, help='processes (one sequence each)')
    parser.add_argument('--overwrite', action='store_true', help='remake outputs that exist')
    parser.add_argument('--no-progress', action='store_true')
    sim = parser.add_argument_group('simulate mode')
    sim.add_argument('--simulate', action='store_true', help='simulate events from PNG sequences')
    sim.add_argument('--raw-output', default=None, help='folder of the raw event h5 files (default <output>/raw)')
    sim.add_argument('--blur-frames', type=int, default=7, help='sharp frames averaged per blurry frame')
    sim.add_argument('--fps', type=float, default=240.0, help='frame rate of the sharp frames')
    sim.add_argument('--gamma', choices=['srgb', 'none'], default='srgb',
                     help='stored values to linear intensity: inverse sRGB or none')
    sim.add_argument('--pos-thres', type=float, default=SIM_DEFAULTS['pos_thres'])
    sim.add_argument('--neg-thres', type=float, default=SIM_DEFAULTS['neg_thres'])
    sim.add_argument('--sigma-thres', type=float, default=SIM_DEFAULTS['sigma_thres'], help='threshold mismatch')
    sim.add_argument('--cutoff-hz', type=float, default=SIM_DEFAULTS['cutoff_hz'], help='photoreceptor low-pass')
    sim.add_argument('--leak-rate-hz', type=float, default=SIM_DEFAULTS['leak_rate_hz'])
    sim.add_argument('--shot-noise-rate-hz', type=float, default=SIM_DEFAULTS['shot_noise_rate_hz'])
    sim.add_argument('--refractory-period', type=float, default=SIM_DEFAULTS['refractory_period_s'])
    args = parser.parse_args(argv)
    if args.denoise:
        opts = {}
        for item in args.denoise:
            key, sep, value = item.partition('=')
            try:
                opts[key.strip()] = yaml.safe_load(value) if sep else None
            except yaml.YAMLError:
                parser.error(f'--denoise {item!r}: value is not valid YAML')
            if not sep:
                parser.error(f'--denoise {item!r}: expected KEY=VALUE, e.g. ba_window=0.01 or hot_pixels=true')
        try:
            check_denoise_options(opts, '--denoise')
        except ValueError as err:
            parser.error(str(err))
        args.denoise = opts
    return args


def main(argv=None):
    """Command-line entry point.

    Args:
        argv (list[str] | None): Arguments; None reads ``sys.argv``.

    Returns:
        list[dict]: The per-sequence records of :func:`make_event_h5`.
    """
    args = parse_args(argv)
    simulator = {'pos_thres': args.pos_thres, 'neg_thres': args.neg_thres, 'sigma_thres': args.sigma_thres,
                 'cutoff_hz': args.cutoff_hz, 'leak_rate_hz': args.leak_rate_hz,
                 'shot_noise_rate_hz': args.shot_noise_rate_hz, 'refractory_period_s': args.refractory_period}
    options = {'num_bins': args.num_bins, 'keep_middle': args.keep_middle, 'crop_rows': args.crop_rows,
               'channels': args.channels, 'add_noise': args.add_noise, 'mask_order': args.mask_order,
               'seed': args.seed, 'denoise': args.denoise}
    if not args.simulate:
        options['window'] = args.window
    results = make_event_h5(args.input, args.output, simulate=args.simulate, raw_output=args.raw_output,
                            overwrite=args.overwrite, workers=args.workers, progress=not args.no_progress,
                            blur_frames=args.blur_frames, fps=args.fps, gamma=args.gamma, simulator=simulator,
                            **options)
    made = [r for r in results if not r['skipped']]
    print(f'{len(results)} sequences: {len(made)} written, {len(results) - len(made)} skipped (already exist; '
          f'--overwrite remakes them); {sum(r["samples"] for r in made)} samples written to {args.output}')
    return results


if __name__ == '__main__':
    main()
