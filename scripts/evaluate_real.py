"""EDI on real recordings without ground truth: threshold used, sharpness and flat-area noise, blurry vs output.

Runs a folder of real blurry frames and their events through ``basicsr/infer.py``'s EDI path
(:func:`basicsr.infer.deblur_frames`: raw events, exact exposure integral, joint threshold estimate, fallback with a
warning) and prints per frame

- the contrast threshold used and its source (``given``, ``joint``, ``per-frame``, ``fallback``);
- sharpness: the root-mean-square gradient magnitude of the gray image (central differences, intensities in
  [0, 1]);
- flat-area noise: the standard deviation of a high-pass (image minus its 5x5 Gaussian blur) over the flattest
  blocks (the 10 % of 16x16 blocks with the lowest gradient energy in the blurry frame; the same blocks in the
  output).

Both figures are no-reference: sharpness rises with deblurring but also with noise, so read it beside the noise.
Then one summary row per recording (means over its frames).

Layouts (``--layout auto`` tells them apart by the files present):

- ``esl-mat`` (eSL-Net, DAVIS346): ``--images DIR`` of APS PNGs and ``--events DIR`` of per-frame ``.mat`` files
  (``event<stem>.mat`` or ``<stem>.mat``) holding ``section_event_timestamp`` (s), ``section_event_x``/``_y``
  (0-based), ``section_event_polarity`` (1 ON, 0 OFF) and ``start_timestamp``/``end_timestamp`` (the exposure).
  Frames without a ``.mat`` file are skipped (and counted). Reading ``.mat`` files needs scipy, which the project
  does not depend on: ``pip install scipy``.
- ``txt`` (eSL-Net camerashake, DAVIS240C): ``--images DIR`` of PNGs and ``--events DIR`` of per-frame ``<stem>.txt``
  files with rows ``t row col p`` (1-based row and column, p 1 ON / 0 OFF) and ``t`` normalised to [0, 1] over the
  frame's event window. The exposure is taken to be that whole window, ``[0, 1]``, as eSL-Net's own test script
  does (it reconstructs latent frames over ``t`` in [0, 1]); its generator widens the exposure by half the gap to
  each neighbouring frame, which the files do not record.
- ``h5``: ``--recording FILE.h5``, an event_utils h5 file with frames and their exposure attributes (the project's
  own format, as ``basicsr/infer.py --events FILE.h5`` reads it).

Usage::

    python scripts/evaluate_real.py --images pic2/images --events pic2/mat
    python scripts/evaluate_real.py --images camerashake_blurimage --events camerashake_event_frame_txt
    python scripts/evaluate_real.py --recording rec.h5 --out results/rec_edi --net-opt threshold=0.25

Events are denoised as ``basicsr/infer.py`` does for EDI (``EDI_DEFAULT_DENOISE``, windows in seconds) except in the
``txt`` layout, whose times are normalised (``--denoise`` / ``--no-denoise`` choose). Nothing is written unless
``--out`` is given (then ``basicsr/infer.py``'s outputs and ``thresholds.csv``).
"""
import argparse
import glob
import os.path as osp
import re
import sys
import warnings

import cv2
import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from basicsr.events import EventFormatError, EventStream  # noqa: E402
from basicsr.infer import (EDI_DEFAULT_DENOISE, InferenceError, deblur_frames, make_denoiser, open_events,  # noqa: E402
                           parse_key_values, read_image, write_result)
from basicsr.models.deblur_methods import load_method, to_float_image  # noqa: E402
from basicsr.models.edi_threshold import THRESHOLD_MODES, summarize_thresholds  # noqa: E402

LAYOUTS = ('auto', 'esl-mat', 'txt', 'h5')
BLOCK = 16
FLAT_FRACTION = 0.1
_MAT_KEYS = ('section_event_timestamp', 'section_event_x', 'section_event_y', 'section_event_polarity',
             'start_timestamp', 'end_timestamp')


def gray(image):
    """Gray float64 image in [0, 1] of an image as read by OpenCV or a float image.

    Args:
        image (np.ndarray): (H, W) or (H, W, C) image, uint8/uint16 or float in [0, 1].

    Returns:
        np.ndarray: (H, W) float64.
    """
    img = np.clip(to_float_image(image), 0, 1).astype(np.float64)
    return img[:, :, :3].mean(axis=2)


def sharpness(img):
    """Root-mean-square gradient magnitude (central differences) of a gray image.

    The mean of the squared gradient, not of its magnitude: blurring a monotone edge keeps the sum of the gradient
    magnitudes (its total variation) but spreads it over more pixels, which lowers the sum of squares.

    Args:
        img (np.ndarray): (H, W) gray image in [0, 1].

    Returns:
        float: ``sqrt(mean(gx^2 + gy^2))``.
    """
    gy, gx = np.gradient(img)
    return float(np.sqrt((gx ** 2 + gy ** 2).mean()))


def flat_blocks(img, block=BLOCK, fraction=FLAT_FRACTION):
    """The flattest blocks of a gray image: lowest mean squared gradient.

    Args:
        img (np.ndarray): (H, W) gray image.
        block (int): Block size in pixels. Default: 16.
        fraction (float): Share of the blocks to keep (at least one). Default: 0.1.

    Returns:
        list[tuple[int, int]]: Top-left corners ``(row, col)`` of the chosen blocks.
    """
    gy, gx = np.gradient(img)
    energy = gx ** 2 + gy ** 2
    corners = [(r, c) for r in range(0, img.shape[0] - block + 1, block) for c in range(0, img.shape[1] - block + 1,
                                                                                       block)]
    if not corners:
        raise ValueError(f'image {img.shape} is smaller than one {block}x{block} block')
    scores = [energy[r:r + block, c:c + block].mean() for r, c in corners]
    keep = max(1, int(round(fraction * len(corners))))
    return [corners[k] for k in np.argsort(scores, kind='stable')[:keep]]


def flat_noise(img, corners, block=BLOCK):
    """Standard deviation of a high-pass (image minus its 5x5 Gaussian blur, sigma 1) over the given blocks.

    Args:
        img (np.ndarray): (H, W) gray image.
        corners (list[tuple[int, int]]): Blocks from :func:`flat_blocks`.
        block (int): Block size. Default: 16.

    Returns:
        float: The noise figure.
    """
    high = img - cv2.GaussianBlur(img, (5, 5), 1.0)
    return float(np.concatenate([high[r:r + block, c:c + block].ravel() for r, c in corners]).std())


def frame_figures(blurry, output):
    """Sharpness and flat-area noise of a blurry frame and its output (same flat blocks for both).

    Args:
        blurry (np.ndarray): The blurry frame as read.
        output (np.ndarray): The output as written (uint8).

    Returns:
        dict: ``sharp_blurry``, ``sharp_output``, ``noise_blurry``, ``noise_output``.
    """
    b, o = gray(blurry), gray(output)
    corners = flat_blocks(b)
    return {'sharp_blurry': sharpness(b), 'sharp_output': sharpness(o), 'noise_blurry': flat_noise(b, corners),
            'noise_output': flat_noise(o, corners)}


def _frame_key(path):
    """The digits of a file stem (``event000013`` -> ``000013``), or the stem."""
    stem = osp.splitext(osp.basename(path))[0]
    digits = re.findall(r'\d+', stem)
    return digits[-1] if digits else stem


def _pairs(images_dir, events_dir, ext):
    if not osp.isdir(images_dir):
        raise InferenceError(f'--images: folder not found: {images_dir}')
    if not osp.isdir(events_dir):
        raise InferenceError(f'--events: folder not found: {events_dir}')
    images = {_frame_key(p): p for p in sorted(glob.glob(osp.join(images_dir, '*.png')))}
    events = {_frame_key(p): p for p in sorted(glob.glob(osp.join(events_dir, f'*{ext}')))}
    if not images:
        raise InferenceError(f'--images {images_dir}: no .png frames')
    common = sorted(set(images) & set(events))
    if not common:
        raise InferenceError(f'no frame of {images_dir} has an event file ({ext}) of the same number in {events_dir}')
    return [(key, images[key], events[key]) for key in common], len(images) - len(common)


def _load_mat(path):
    try:
        import scipy.io
    except ImportError:
        raise InferenceError('reading eSL-Net .mat event files needs scipy (not a dependency of this project): '
                             'pip install scipy') from None
    try:
        mat = scipy.io.loadmat(path)
    except (ValueError, OSError, NotImplementedError) as err:
        raise InferenceError(f'{path}: not a readable .mat file ({err})') from None
    missing = [k for k in _MAT_KEYS if k not in mat]
    if missing:
        raise InferenceError(f'{path}: no {missing} in the .mat file; expected the eSL-Net keys {list(_MAT_KEYS)}')
    return {k: np.asarray(mat[k]).ravel() for k in _MAT_KEYS}


def read_esl_mat(path, height, width):
    """Events and exposure of an eSL-Net ``.mat`` file, on a clock starting at the exposure start.

    Args:
        path (str): The ``.mat`` file.
        height (int): Sensor height (the frame's).
        width (int): Sensor width.

    Returns:
        tuple[EventStream, float, float]: Events (t in s from the exposure start), exposure start 0 and end.
    """
    mat = _load_mat(path)
    t0, t1 = float(mat['start_timestamp'][0]), float(mat['end_timestamp'][0])
    stream = EventStream.from_arrays(mat['section_event_x'], mat['section_event_y'],
                                     mat['section_event_timestamp'].astype(np.float64) - t0,
                                     mat['section_event_polarity'], height, width, source=path, sort=True)
    return stream, 0.0, t1 - t0


def read_camerashake_txt(path, height, width):
    """Events of an eSL-Net camerashake ``.txt`` file (``t row col p``, 1-based, ``t`` normalised to [0, 1]).

    Args:
        path (str): The ``.txt`` file.
        height (int): Sensor height (the frame's).
        width (int): Sensor width.

    Returns:
        tuple[EventStream, float, float]: Events (t in units of the window), exposure ``0.0`` and ``1.0``.
    """
    try:
        rows = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise InferenceError(f'{path}: expected rows "t row col p" of numbers ({err})') from None
    if rows.size == 0 or rows.shape[1] != 4:
        raise InferenceError(f'{path}: expected 4 columns "t row col p", got {rows.shape[1] if rows.size else 0}')
    t, row, col, p = rows.T
    stream = EventStream.from_arrays(col.astype(np.int64) - 1, row.astype(np.int64) - 1, t, p.astype(np.int64),
                                     height, width, source=path, sort=True)
    return stream, 0.0, 1.0


def folder_frames(images_dir, events_dir, layout='auto'):
    """Frames of a folder layout as :func:`basicsr.infer.deblur_frames` takes them.

    Args:
        images_dir (str): Folder of blurry PNGs.
        events_dir (str): Folder of per-frame event files.
        layout (str): ``'esl-mat'``, ``'txt'`` or ``'auto'`` (by the event files present). Default: ``'auto'``.

    Returns:
        tuple[list[dict], int, str]: The frames, how many PNGs had no event file, and the layout.
    """
    if layout == 'auto':
        has_mat = bool(glob.glob(osp.join(events_dir, '*.mat')))
        layout = 'esl-mat' if has_mat else 'txt'
    reader, ext = {'esl-mat': (read_esl_mat, '.mat'), 'txt': (read_camerashake_txt, '.txt')}[layout]
    pairs, skipped = _pairs(images_dir, events_dir, ext)
    frames = []
    for key, png, ev_path in pairs:
        image = read_image(png)
        events, t0, t1 = reader(ev_path, *image.shape[:2])
        frames.append({'name': key, 'image': image, 'events': events, 't_start': t0, 't_end': t1})
    return frames, skipped, layout


def recording_frames(path):
    """Frames of an event_utils h5 recording with their exposure windows and events.

    Args:
        path (str): The ``.h5`` file.

    Returns:
        list[dict]: The frames, as :func:`basicsr.infer.deblur_frames` takes them.
    """
    source = open_events(path)
    try:
        if not source.frames:
            raise InferenceError(f'{path} holds no frames; expected an event_utils h5 recording with images')
        frames = []
        for info in source.frames:
            if info.exposure is None:
                raise InferenceError(f'{path}: frame {info.index} has no exposure_start/exposure_end attributes')
            t0, t1 = info.exposure
            frames.append({'name': f'{info.index:06d}', 'image': source.frame_image(info.index),
                           'events': source.window(t0, t1), 't_start': t0, 't_end': t1})
        return frames
    finally:
        source.close()


def evaluate(frames, net, threshold_mode='joint', window=0, denoise=None, out_dir=None):
    """Deblurs the frames with EDI (as ``basicsr/infer.py``) and measures each.

    Args:
        frames (list[dict]): As :func:`basicsr.infer.deblur_frames` takes them.
        net (torch.nn.Module): The EDI network (its options: threshold, gamma, estimation settings).
        threshold_mode (str): ``'joint'`` or ``'per-frame'``. Default: ``'joint'``.
        window (int): Frames per joint estimate, 0 = all. Default: 0.
        denoise (Callable | None): Event filter (see :func:`basicsr.infer.make_denoiser`). Default: None.
        out_dir (str | None): Also write infer.py's outputs there. Default: None.

    Returns:
        list[dict]: Per frame ``name``, ``threshold`` (ThresholdChoice), ``events`` (count) and the figures of
        :func:`frame_figures`.
    """
    results = deblur_frames(frames, 'EDI', net, threshold_mode=threshold_mode, threshold_window=window,
                            denoise=denoise)
    rows = []
    for frame, result in zip(frames, results):
        if out_dir:
            write_result(result, out_dir, result['name'])
        rows.append({'name': result['name'], 'threshold': result['threshold'], 'events': len(frame['events']),
                     **frame_figures(frame['image'], result['sharp'])})
    return rows


def format_rows(rows):
    """The per-frame table.

    Args:
        rows (list[dict]): From :func:`evaluate`.

    Returns:
        str: Fixed-width table.
    """
    lines = [f'{"frame":>10} {"events":>8} {"threshold":>9} {"source":>9}  {"sharpness blurry→out":>22}  '
             f'{"flat noise blurry→out":>23}']
    for r in rows:
        lines.append(f'{r["name"]:>10} {r["events"]:>8d} {r["threshold"].value:>9.3f} {r["threshold"].source:>9}  '
                     f'{r["sharp_blurry"]:>10.4f} → {r["sharp_output"]:<9.4f}  '
                     f'{r["noise_blurry"]:>10.4f} → {r["noise_output"]:<10.4f}')
    return '\n'.join(lines)


def summary(rows):
    """Means over the frames of a recording.

    Args:
        rows (list[dict]): From :func:`evaluate`.

    Returns:
        dict: ``frames``, ``thresholds`` (summary text) and the mean of each figure.
    """
    keys = ('sharp_blurry', 'sharp_output', 'noise_blurry', 'noise_output')
    return {'frames': len(rows), 'thresholds': summarize_thresholds([r['threshold'] for r in rows]),
            **{k: float(np.mean([r[k] for r in rows])) for k in keys}}


def build_parser():
    """Returns the argument parser.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--images', help='folder of blurry PNG frames')
    p.add_argument('--events', help='folder of per-frame event files (.mat or .txt)')
    p.add_argument('--recording', help='event_utils h5 recording with frames (instead of --images/--events)')
    p.add_argument('--layout', choices=LAYOUTS, default='auto', help='folder layout')
    p.add_argument('--name', help='recording name in the summary (default: the folder or file name)')
    p.add_argument('--net-opt', action='append', metavar='KEY=VALUE', help='EDI option, e.g. threshold=0.25')
    p.add_argument('--edi-threshold-mode', choices=THRESHOLD_MODES, default='joint', help='as in infer.py')
    p.add_argument('--edi-window', type=int, default=0, help='as in infer.py')
    p.add_argument('--denoise', action='append', metavar='KEY=VALUE', help='as in infer.py')
    p.add_argument('--no-denoise', action='store_true', help='as in infer.py')
    p.add_argument('--out', help='also write the outputs of infer.py here')
    return p


def main(argv=None):
    """Evaluates one recording and prints the per-frame table and the summary row.

    Args:
        argv (list[str] | None): Arguments; None reads ``sys.argv``. Default: None.

    Returns:
        tuple[list[dict], dict]: The per-frame rows and the summary.
    """
    args = build_parser().parse_args(argv)
    if args.recording:
        if args.images or args.events:
            raise InferenceError('give either --recording FILE.h5 or --images DIR --events DIR')
        frames, skipped, layout = recording_frames(args.recording), 0, 'h5'
        name = args.name or osp.splitext(osp.basename(args.recording))[0]
    else:
        if not (args.images and args.events):
            raise InferenceError('give --images DIR --events DIR (or --recording FILE.h5)')
        if args.layout == 'h5':
            raise InferenceError('--layout h5 takes --recording FILE.h5')
        frames, skipped, layout = folder_frames(args.images, args.events, args.layout)
        name = args.name or osp.basename(osp.normpath(args.images))
    net_opt = parse_key_values(args.net_opt)
    if args.no_denoise and args.denoise:
        raise InferenceError('--denoise and --no-denoise exclude each other')
    denoise_opts = None if args.no_denoise else parse_key_values(args.denoise, '--denoise')
    if not args.denoise and not args.no_denoise and layout != 'txt':
        denoise_opts = EDI_DEFAULT_DENOISE
    elif not args.denoise and not args.no_denoise:
        print('note: the txt layout\'s times are normalised to the frame window, not seconds, so infer.py\'s default '
              'denoising (windows in seconds) is not applied; pass --denoise ba_window=<fraction of the window>')
    net = load_method('EDI', None, net_opt)
    rows = evaluate(frames, net, args.edi_threshold_mode, args.edi_window,
                    make_denoiser(denoise_opts) if denoise_opts else None, args.out)
    print(f'{name}: {len(frames)} frames ({layout} layout'
          + (f'; {skipped} frames without an event file skipped' if skipped else '') + ')')
    print(format_rows(rows))
    result = summary(rows)
    print(f'summary {name}: {result["frames"]} frames, threshold {result["thresholds"]}, sharpness '
          f'{result["sharp_blurry"]:.4f} → {result["sharp_output"]:.4f}, flat noise {result["noise_blurry"]:.4f} → '
          f'{result["noise_output"]:.4f}')
    return rows, result


if __name__ == '__main__':
    warnings.formatwarning = lambda message, *args, **kwargs: f'warning: {message}\n'
    try:
        main()
    except (InferenceError, EventFormatError, ValueError) as error:
        sys.exit(f'error: {error}')
