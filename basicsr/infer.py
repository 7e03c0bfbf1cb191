"""Deblur your own blurry frames with their events: ``python basicsr/infer.py``.

One frame (a PNG/JPG, or an APS frame of the event file) and its exposure window, or a whole recording (every
frame of an event_utils h5 file or an AEDAT4 file, each with its own exposure window)::

    python basicsr/infer.py --events rec.h5 --method EFNet --checkpoint EFNet.pth --out results/rec
    python basicsr/infer.py --image blur.png --events ev.txt --exposure 0.10 0.12 --method EDI --out out/
    python basicsr/infer.py --image rgb.png --events rec.aedat4 --frame 7 --method LowLightEventDeblurNet \\
        --checkpoint final_rgb.pth --out out/

Event files: any format of ``basicsr.events.read_events`` (``.h5`` event_utils, ``.txt``/``.csv``, ``.npy``,
``.npz`` HighREV chunks — several chunks may be given —, ``.aedat4``). Files without a sensor size (``.npy``,
``.npz``, text without a ``W H`` line) are taken to be on the frame's pixel grid unless ``--sensor-size`` is given.
The exposure window is ``[t0, t1]`` (closed) in seconds on the events' clock: ``--exposure t0 t1``, or the frame's
``exposure_start``/``exposure_end`` attributes (h5) / exposure begin/end (AEDAT4), or ``--exposure-time T``
centred on the frame timestamp.

Channel conventions: images are read with OpenCV, so colour PNG/JPG frames are BGR, as are event_utils h5 frames
and the EFNet training frames: EFNet and EDI see and return the channels in that order and the result is written
as is. RGB/RGBA AEDAT4 frames are converted to BGR first. Gray frames are replicated to 3 channels for a 3-channel
EFNet. The low-light models take gray APS frames (colour converted to gray) and, for the RGB model, the RGB image at
exactly 3x the event resolution (converted BGR->RGB for the network and back for writing); their outputs are
linear intensities, written without gamma.

EDI (no learning) integrates the raw events of the exposure exactly (:meth:`basicsr.archs.edi_arch.EDI.deblur_events`).
Its contrast threshold is given (``--net-opt threshold=0.25``), or estimated jointly over the frames of the run
(``--edi-threshold-mode joint``, the default; ``--edi-window N`` estimates over windows of N consecutive frames) or
per frame (``--edi-threshold-mode per-frame``); without an estimate the documented fallback
``basicsr.events.edi.DEFAULT_THRESHOLD`` is used with a warning naming the frame. See
:mod:`basicsr.models.edi_threshold`.

Outputs (written atomically): ``<out>/sharp/<name>.png``, ``<out>/events/<name>.png`` (net polarity of the
window's events: red positive, blue negative), ``<out>/panel/<name>.png`` (blurry | events | sharp, captioned; the
EDI caption gives the threshold and its source) and, for EDI, ``<out>/thresholds.csv`` (``frame, threshold, source,
reason`` of every frame; source ``given``, ``joint``, ``per-frame`` or ``fallback``). Every input is checked before
the first file is written: a bad file, window, frame size, option or checkpoint, or events that do not cover an
exposure, raise an :class:`InferenceError` (or the event core's ``EventFormatError``) naming what is wrong and what
was expected; so are an output folder that cannot be written and results of an earlier run that would be replaced
(unless ``--overwrite``). An :class:`InferenceWarning` says when a frame has almost no events or a result equals its
input.
"""
import argparse
import os
import os.path as osp
import sys
import warnings
from dataclasses import dataclass

if __package__ in (None, ''):  # run as a script: make the repository importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from basicsr.events import EventFormatError, event_frame  # noqa: E402
from basicsr.events.edi import DEFAULT_DENOISE  # noqa: E402
from basicsr.models.deblur_methods import (METHODS, InferenceError, InferenceWarning, canonical_method,  # noqa: E402
                                           check_frame_size, load_method, method_batch, network_inputs,
                                           to_float_image)
from basicsr.models.edi_threshold import THRESHOLD_MODES, choose_thresholds, write_thresholds_csv  # noqa: E402
from basicsr.models.inference import forward_padded, forward_tiled  # noqa: E402
from basicsr.utils.img_util import imread, imwrite, make_panel, tensor2img  # noqa: E402
from basicsr.utils.output_check import OutputFolderError, check_writable  # noqa: E402

__all__ = ['InferenceError', 'InferenceWarning', 'deblur', 'deblur_file', 'deblur_frames', 'deblur_recording',
           'open_events', 'EventSource', 'write_result', 'check_out', 'read_image', 'make_denoiser', 'parse_key_values', 'main',
           'THRESHOLDS_FILE']

THRESHOLDS_FILE = 'thresholds.csv'
# Events may stop this fraction of the exposure short of either end before they count as not covering it.
COVERAGE_TOLERANCE = 0.05
# Event denoising EDI gets unless --denoise / --no-denoise say otherwise (options of basicsr.events.denoise; times in
# seconds): the measured recommendation of basicsr.events.edi (a 10 ms background-activity window, hot pixels).
EDI_DEFAULT_DENOISE = DEFAULT_DENOISE


def read_image(path, what='--image'):
    """Reads an image file as stored (OpenCV ``IMREAD_UNCHANGED``: BGR colour, gray (H, W), uint8/uint16).

    Args:
        path (str): Image file.
        what (str): The argument named in errors. Default: ``'--image'``.

    Returns:
        np.ndarray: The image.

    Raises:
        InferenceError: For a missing or undecodable file.
    """
    try:
        return imread(path, 'unchanged')
    except FileNotFoundError:
        raise InferenceError(f'{what}: image file not found: {path}') from None
    except ValueError:
        raise InferenceError(f'{what}: cannot decode {path} as an image; expected a PNG or JPG file') from None


def _text_has_size(path):
    try:
        with open(path, 'r', encoding='utf-8') as f:
            for line in f:
                stripped = line.strip()
                if stripped and not stripped.startswith('#'):
                    return len(stripped.split()) == 2
    except (OSError, UnicodeDecodeError):
        return False
    return False


def _frame_image(frame):
    image = np.asarray(frame.image)
    if frame.attrs.get('format') in ('RGB', 'RGBA') and image.ndim == 3:
        image = np.ascontiguousarray(image[:, :, 2::-1])
    return image


@dataclass
class FrameInfo:
    """A frame of an event file, described without its pixels.

    Args:
        index (int): Zero-based index in the file.
        shape (tuple): Pixel array shape.
        timestamp (float): Frame time (s).
        exposure (tuple[float, float] | None): Exposure window (s) from the file, if stored.
    """
    index: int
    shape: tuple
    timestamp: float
    exposure: tuple = None


class EventSource:
    """Events (and frames) of one recording, read lazily where the format allows (h5 windows).

    Args:
        paths (list[str]): The event file (several ``.npz`` chunks allowed).
        sensor_size (tuple[int, int] | None): Sensor (H, W) for files that do not store it. Default: None.
        fallback_size (tuple[int, int] | None): Size assumed when neither the file nor ``sensor_size`` gives one
            (the frame size). Default: None.
        time_scale (float): Multiplier to seconds for ``.txt``/``.npy``/``.npz``. Default: 1.0.
    """

    def __init__(self, paths, sensor_size=None, fallback_size=None, time_scale=1.0):
        paths = [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
        if not paths:
            raise InferenceError('--events: no event file given')
        for p in paths:
            if not osp.isfile(p):
                raise InferenceError(f'--events: event file not found: {p}')
        exts = {osp.splitext(p)[1].lower() for p in paths}
        if len(paths) > 1 and exts != {'.npz'}:
            raise InferenceError(f'--events: several files are only accepted as .npz chunks of one recording, got '
                                 f'{paths}')
        self.paths, self.name = paths, paths[0] if len(paths) == 1 else f'{paths[0]} (+{len(paths) - 1} chunks)'
        self.ext = exts.pop()
        self._reader, self._stream, self._frames = None, None, []
        if self.ext in ('.h5', '.hdf5'):
            from basicsr.events import H5EventReader
            self._reader = H5EventReader(paths[0])
            self.height, self.width = self._reader.height, self._reader.width
            try:
                self.frames = [self._h5_info(i) for i in range(self._reader.num_frames('images'))]
            except BaseException:
                self.close()
                raise
            return
        if self.ext == '.aedat4':
            from basicsr.events import read_aedat4
            self._stream, self._frames = read_aedat4(paths[0])
            self.frames = [FrameInfo(i, np.asarray(f.image).shape, f.timestamp, f.exposure)
                           for i, f in enumerate(self._frames)]
        else:
            self._stream = self._read_plain(sensor_size, fallback_size, time_scale)
            self.frames = []
        self.height, self.width = self._stream.height, self._stream.width

    @classmethod
    def from_stream(cls, stream, name='events'):
        """Wraps events already in memory (no frames).

        Args:
            stream (EventStream): The events, with the sensor size.
            name (str): Named in messages. Default: ``'events'``.

        Returns:
            EventSource: The source.
        """
        source = cls.__new__(cls)
        source.paths, source.name, source.ext = [], name, ''
        source._reader, source._stream, source._frames, source.frames = None, stream, [], []
        source.height, source.width = stream.height, stream.width
        return source

    def _read_plain(self, sensor_size, fallback_size, time_scale):
        from basicsr.events import read_events, read_highrev_events
        has_size = self.ext in ('.txt', '.csv') and _text_has_size(self.paths[0])
        size = sensor_size if sensor_size is not None else (None if has_size else fallback_size)
        h, w = (None, None) if size is None else (int(size[0]), int(size[1]))
        try:
            if self.ext == '.npz':
                return read_highrev_events(self.paths, h, w, time_scale=time_scale, drop_last=False)
            return read_events(self.paths[0], height=h, width=w, time_scale=time_scale)
        except EventFormatError as err:
            if size is not None and sensor_size is None and 'outside the sensor' in str(err):
                raise InferenceError(f'{err} The file {self.name} stores no sensor size, so the frame size {h}x{w} '
                                     'was assumed: expected events inside the frame (or pass --sensor-size H W).'
                                     ) from None
            raise

    def _h5_info(self, index):
        attrs = self._reader.frame_attrs(index)
        shape = tuple(int(v) for v in np.asarray(attrs['size']).ravel()) if 'size' in attrs else None
        if shape is None:
            shape = np.asarray(self._reader.read_frame(index).image).shape
        exposure = None
        if 'exposure_start' in attrs and 'exposure_end' in attrs:
            exposure = (float(attrs['exposure_start']), float(attrs['exposure_end']))
        if 'timestamp' not in attrs:
            raise InferenceError(f'{self.name}: frame {index} has no "timestamp" attribute')
        return FrameInfo(index, shape, float(attrs['timestamp']), exposure)

    @property
    def shape(self):
        """tuple[int, int]: Sensor (H, W)."""
        return (self.height, self.width)

    def frame_image(self, index):
        """Reads the pixels of frame ``index`` (colour in BGR order).

        Args:
            index (int): Frame index.

        Returns:
            np.ndarray: The frame.
        """
        if self._reader is not None:
            return _frame_image(self._reader.read_frame(index))
        return _frame_image(self._frames[index])

    def count(self, t_start, t_end):
        """Number of events in ``[t_start, t_end]``.

        Args:
            t_start (float): Window start (s).
            t_end (float): Window end (s).

        Returns:
            int: Event count.
        """
        if self._reader is not None:
            return self._reader.searchsorted(t_end, 'right') - self._reader.searchsorted(t_start, 'left')
        i0, i1 = self._stream.index_range(t_start, t_end, closed='both')
        return i1 - i0

    def window(self, t_start, t_end):
        """Events in ``[t_start, t_end]``.

        Args:
            t_start (float): Window start (s).
            t_end (float): Window end (s).

        Returns:
            EventStream: The window.
        """
        if self._reader is not None:
            return self._reader.read_window(t_start, t_end, closed='both')
        return self._stream.window(t_start, t_end, closed='both', allow_empty=True)

    def time_range(self):
        """Times of the first and last event.

        Returns:
            tuple[float, float] | None: ``(t_first, t_last)`` in seconds; None without events.
        """
        if self._reader is not None:
            n = self._reader.num_events
            return None if n == 0 else (float(self._reader.read_slice(0, 1).t[0]),
                                        float(self._reader.read_slice(n - 1, n).t[0]))
        s = self._stream
        return None if len(s) == 0 else (float(s.t[0]), float(s.t[-1]))

    def span(self):
        """str: The time span of the events, for messages."""
        span = self.time_range()
        return 'no events' if span is None else f'[{span[0]}, {span[1]}] s'

    def close(self):
        """Closes an open h5 file (idempotent)."""
        if self._reader is not None:
            self._reader.close()


def open_events(paths, sensor_size=None, fallback_size=None, time_scale=1.0):
    """Opens an event file (see :class:`EventSource`).

    Args:
        paths (str | list[str]): Event file, or several ``.npz`` chunks.
        sensor_size (tuple[int, int] | None): Sensor (H, W) for files that do not store it. Default: None.
        fallback_size (tuple[int, int] | None): Size assumed otherwise (the frame size). Default: None.
        time_scale (float): Multiplier to seconds for text/npy/npz. Default: 1.0.

    Returns:
        EventSource: The opened source.
    """
    return EventSource(paths, sensor_size, fallback_size, time_scale)


def _check_exposure(t_start, t_end, what):
    try:
        t_start, t_end = float(t_start), float(t_end)
    except (TypeError, ValueError):
        raise InferenceError(f'{what}: exposure window must be two numbers t0 t1 (s), got {t_start!r}, '
                             f'{t_end!r}') from None
    if not (np.isfinite(t_start) and np.isfinite(t_end) and t_end > t_start):
        raise InferenceError(f'{what}: exposure window [{t_start}, {t_end}] must satisfy t0 < t1 (seconds)')
    return t_start, t_end


def _empty_window(t_start, t_end, what, events_name, span):
    return InferenceError(f'{what}: the exposure window [{t_start}, {t_end}] s holds no events of {events_name} '
                          f'(events span {span}); expected a window on the clock of the events (check the units, '
                          '--time-scale, and --exposure)')


def _check_coverage(t_start, t_end, time_range, what, events_name):
    """Raises when the events start after or end before the exposure (beyond :data:`COVERAGE_TOLERANCE`)."""
    t_first, t_last = time_range
    slack = COVERAGE_TOLERANCE * (t_end - t_start)
    if t_first > t_start + slack or t_last < t_end - slack:
        raise InferenceError(f'{what}: the events of {events_name} span [{t_first}, {t_last}] s and do not cover '
                             f'the exposure [{t_start}, {t_end}] s; expected events over the whole exposure (a '
                             'recording cut short, or an exposure window on another clock: check --exposure and '
                             '--time-scale)')


def _check_window(source, t_start, t_end, what):
    """The checks of an exposure window against the events (any method): not empty, covered by the events."""
    if source.count(t_start, t_end) == 0:
        raise _empty_window(t_start, t_end, what, source.name, source.span())
    _check_coverage(t_start, t_end, source.time_range(), what, source.name)


def _warn_sparse(window, name, min_pixels):
    """Warns when fewer than ``min_pixels`` pixels have events in the window."""
    pixels = np.unique(window.y.astype(np.int64) * window.width + window.x).size
    if pixels < min_pixels:
        warnings.warn(f'{name}: only {len(window)} events on {pixels} pixels in the exposure (fewer than '
                      f'{min_pixels} pixels): almost nothing to deblur with', InferenceWarning, stacklevel=3)


def _warn_unchanged(image, sharp, name, method):
    """Warns when the written result equals the input image."""
    before = np.round(np.clip(to_float_image(image), 0, 1) * 255).astype(np.uint8)
    before = before[:, :, 0] if before.shape[2] == 1 else before[:, :, :3]
    if before.shape == sharp.shape and np.array_equal(before, sharp):
        warnings.warn(f'{method} returned {name} unchanged (the output equals the blurry input)', InferenceWarning,
                      stacklevel=3)


def _device_of(net, device):
    if device is not None:
        return torch.device(device)
    param = next(net.parameters(), None)
    return param.device if param is not None else torch.device('cpu')


def _run_network(net, inputs, tile):
    multiple = getattr(net, 'size_multiple', 1)
    if tile:
        outputs = forward_tiled(net, inputs, int(tile), multiple=multiple)
    else:
        outputs = forward_padded(net, inputs, multiple)
    names = net.io['outputs']
    return outputs[names.index(net.io['result'])]


def _edi_image(image):
    """EDI's view of a frame: float (H, W, C) in [0, 1] in the channel order read, alpha dropped."""
    img = to_float_image(image)
    return img[:, :, :3] if img.shape[2] == 4 else img


def _edi_sample(net, image, window, t_start, t_end):
    """One frame for :func:`basicsr.models.edi_threshold.choose_thresholds`: linear image and raw events."""
    return (net.linearize(_edi_image(image)), window.x, window.y, window.t, window.p, t_start, t_end)


def deblur(image, events, t_start, t_end, method, net, aps=None, device=None, tile=None, use_mask=True,
           image_name='image', events_name='events', denoise=None):
    """Deblurs one frame with the events of its exposure window.

    EDI estimates the threshold of this one frame unless the network has one (see :func:`deblur_frames` for a
    threshold estimated jointly over several frames).

    Args:
        image (np.ndarray): Blurry frame as read by OpenCV (BGR colour or gray; uint8, uint16 or float in [0, 1]);
            the RGB image at 3x the event resolution for the RGB low-light model.
        events (EventStream): Events (all, or already windowed) with the sensor size.
        t_start (float): Exposure start (s), on the events' clock.
        t_end (float): Exposure end (s); the window is ``[t_start, t_end]``.
        method (str): ``'EFNet'``, ``'LowLightEventDeblurNet'`` or ``'EDI'``.
        net (torch.nn.Module): The network of that method (see :func:`basicsr.models.deblur_methods.load_method`).
        aps (np.ndarray | None): Gray APS frame for the RGB low-light model. Default: None.
        device (str | torch.device | None): Device; None uses the network's. Default: None.
        tile (int | None): Tile size for tiled inference; None runs the whole (padded) frame. Default: None.
        use_mask (bool): Feed EFNet the event mask (EMGC), as the released weights were trained. Default: True.
        image_name (str): Named in errors and warnings. Default: ``'image'``.
        events_name (str): Named in errors. Default: ``'events'``.
        denoise (Callable | None): Maps the window's ``EventStream`` to a denoised one (see
            :func:`make_denoiser`); None keeps every event. Default: None.

    Returns:
        dict: ``sharp`` uint8 image to write (BGR (H, W, 3) or gray (H, W)); ``sharp_float`` float32 (C, H, W)
        network output in the network's channel order, unclamped; ``events`` uint8 BGR event picture; ``panel``
        uint8 BGR blurry | events | sharp; ``representation`` float32 un-normalised event tensor (C, H, W);
        ``threshold`` the :class:`~basicsr.models.edi_threshold.ThresholdChoice` of EDI (None for networks).

    Raises:
        InferenceError: For a frame size that does not fit the sensor, a window without events or events that do
            not cover it.
    """
    method = canonical_method(method)
    source = EventSource.from_stream(events, events_name)
    job = _Job('frame', t_start, t_end, image=image, aps=aps, image_name=image_name)
    _validate_jobs([job], source, method, net)
    return _run_jobs([job], source, method, net, device, tile, use_mask, denoise=denoise)[0]


def _deblur_window(image, window, t_start, t_end, method, net, aps, device, tile, use_mask, threshold=None,
                   name='image'):
    device = _device_of(net, device)
    batch, rep = method_batch(method, net, image, window, t_start, t_end, aps)
    _warn_sparse(window, name, getattr(net, 'min_pixels', 16))
    if method == 'EDI':
        latent = net.deblur_events(_edi_image(image), window.x, window.y, window.t, window.p, t_start, t_end,
                                   threshold.value)
        result = torch.from_numpy(np.ascontiguousarray(latent.transpose(2, 0, 1)))
        label = threshold.label()
    else:
        if method == 'EFNet' and not use_mask:
            batch['mask'] = None
        inputs = network_inputs(net, batch, device)
        with torch.inference_mode():
            result = _run_network(net, inputs, tile)[0].float().cpu()
        label = method
    sharp_float = result.numpy()
    rgb_out = method == 'LowLightEventDeblurNet' and net.rgb
    sharp = tensor2img(result, rgb2bgr=rgb_out)
    _warn_unchanged(image, sharp, name, method)
    picture = event_frame(window.x, window.y, window.p, window.height, window.width)[:, :, ::-1]
    picture = np.ascontiguousarray(picture)
    return {'sharp': sharp, 'sharp_float': sharp_float, 'events': picture, 'representation': rep,
            'panel': make_panel([image, picture, sharp], ['blurry', 'events', label]), 'threshold': threshold}


RESULT_KINDS = ('sharp', 'events', 'panel')


def check_out(out_dir, names, overwrite=False):
    """Checks, before any inference, that the results can be written and would replace no earlier result.

    Args:
        out_dir (str): Output folder.
        names (list[str]): File stems that will be written (see :func:`write_result`).
        overwrite (bool): Allow replacing existing result files. Default: False.

    Raises:
        InferenceError: For a folder that cannot be created or written, or existing results without ``overwrite``.
    """
    paths = [osp.join(out_dir, kind, f'{name}.png') for name in names for kind in RESULT_KINDS]
    try:
        for folder in dict.fromkeys([out_dir] + [osp.dirname(p) for p in paths]):
            check_writable(folder, '--out')
    except OutputFolderError as err:
        raise InferenceError(str(err)) from None
    existing = [p for p in paths if osp.lexists(p)]
    if existing and not overwrite:
        raise InferenceError(f'--out {out_dir}: {len(existing)} result files of an earlier run would be replaced '
                             f'(e.g. {existing[0]}); pass --overwrite to replace them, or choose another --out')


def write_result(result, out_dir, name):
    """Writes ``sharp/<name>.png``, ``events/<name>.png`` and ``panel/<name>.png`` atomically, and for EDI the
    frame's row of ``thresholds.csv`` (other frames' rows are kept).

    Args:
        result (dict): Returned by :func:`deblur`.
        out_dir (str): Output folder.
        name (str): File stem.

    Returns:
        dict: ``kind -> path`` of the written files (``thresholds`` for EDI).
    """
    paths = {}
    for kind in RESULT_KINDS:
        path = osp.join(out_dir, kind, f'{name}.png')
        imwrite(result[kind], path)
        paths[kind] = path
    if result.get('threshold') is not None:
        paths['thresholds'] = write_thresholds_csv(osp.join(out_dir, THRESHOLDS_FILE), [name], [result['threshold']])
    return paths


@dataclass
class _Job:
    name: str
    t_start: float
    t_end: float
    image: object = None  # array, or None to read frame `index` of the source
    index: int = None
    aps: object = None
    image_name: str = 'image'
    source: object = None  # the job's own EventSource (frames given in memory), else the run's


def _frame_exposure(source, info, exposure_time):
    if info.exposure is not None:
        return info.exposure
    if exposure_time is not None:
        half = float(exposure_time) / 2
        return info.timestamp - half, info.timestamp + half
    raise InferenceError(f'{source.name}: frame {info.index} has no exposure window (exposure_start/exposure_end '
                         'attributes); expected them in the file, or pass --exposure t0 t1 or --exposure-time T '
                         '(window centred on the frame timestamp)')


def _select_frames(source, frames):
    if not source.frames:
        raise InferenceError(f'{source.name} holds no frames ({source.ext} events only); pass --image with the '
                             'blurry frame and --exposure t0 t1')
    if frames is None:
        return list(source.frames)
    chosen = []
    for k in frames:
        if not isinstance(k, (int, np.integer)) or not 0 <= k < len(source.frames):
            raise InferenceError(f'--frame {k}: {source.name} has {len(source.frames)} frames; expected an index '
                                 f'in 0..{len(source.frames) - 1}')
        chosen.append(source.frames[int(k)])
    return chosen


def _validate_jobs(jobs, source, method, net):
    """Checks every job (frame size, window with events covering it) before anything is written."""
    rgb = method == 'LowLightEventDeblurNet' and bool(getattr(net, 'rgb', False))
    for job in jobs:
        events = job.source or source
        job.t_start, job.t_end = _check_exposure(job.t_start, job.t_end, job.image_name)
        shape = np.shape(job.image) if job.image is not None else source.frames[job.index].shape
        aps_shape = None
        if rgb:
            if job.aps is not None:
                aps_shape = np.shape(job.aps)
            elif job.index is not None and job.image is not None:
                aps_shape = source.frames[job.index].shape
        check_frame_size(shape, events.shape, rgb, aps_shape, job.image_name, events.name)
        _check_window(events, job.t_start, job.t_end, job.image_name)


def _job_inputs(job, source, rgb, denoise):
    """The image, APS frame and (denoised) event window of a job."""
    events = job.source or source
    image = job.image if job.image is not None else source.frame_image(job.index)
    aps = job.aps
    if rgb and aps is None and job.index is not None:
        aps = source.frame_image(job.index)
    window = events.window(job.t_start, job.t_end)
    if denoise is not None:
        window = denoise(window)
    return image, aps, window


def _edi_thresholds(jobs, source, net, threshold_mode, threshold_window, denoise):
    """The :class:`~basicsr.models.edi_threshold.ThresholdChoice` of every job (EDI)."""
    def load_sample(k):
        image, _, window = _job_inputs(jobs[k], source, False, denoise)
        return _edi_sample(net, image, window, jobs[k].t_start, jobs[k].t_end)

    try:
        return choose_thresholds([job.image_name for job in jobs], load_sample, net.threshold, threshold_mode,
                                 threshold_window, net.estimate_options())
    except ValueError as err:
        raise InferenceError(f'EDI threshold: {err}') from None


def _run_jobs(jobs, source, method, net, device, tile, use_mask, out_dir=None, progress=False,
              threshold_mode='joint', threshold_window=0, denoise=None):
    """Deblurs validated jobs (EDI thresholds chosen first); writes each result when ``out_dir`` is given.

    Returns:
        list[dict]: Per job ``name`` plus the written paths (``out_dir``) or the result of :func:`deblur`.
    """
    from tqdm import tqdm

    rgb = method == 'LowLightEventDeblurNet' and bool(getattr(net, 'rgb', False))
    thresholds = [None] * len(jobs)
    if method == 'EDI':
        thresholds = _edi_thresholds(jobs, source, net, threshold_mode, threshold_window, denoise)
    done = []
    for job, threshold in zip(tqdm(jobs, desc=f'{method} deblurring', unit='frame', disable=not progress),
                              thresholds):
        image, aps, window = _job_inputs(job, source, rgb, denoise)
        result = _deblur_window(image, window, job.t_start, job.t_end, method, net, aps, device, tile, use_mask,
                                threshold, job.image_name)
        done.append({'name': job.name, **(write_result(result, out_dir, job.name) if out_dir else result)})
    return done


def deblur_recording(events_path, out_dir, method, net, frames=None, exposure_time=None, device=None, tile=None,
                     use_mask=True, progress=True, threshold_mode='joint', threshold_window=0, denoise=None,
                     overwrite=False):
    """Deblurs every frame of a recording (event_utils h5 ``images/*`` or AEDAT4 APS frames) with its exposure.

    All frames are checked (size, exposure window, events covering the window) before the first file is written.

    Args:
        events_path (str): ``.h5`` or ``.aedat4`` file with frames.
        out_dir (str): Output folder (``sharp/``, ``events/``, ``panel/`` with ``<index:06d>.png``; EDI also
            ``thresholds.csv``).
        method (str): Method name.
        net (torch.nn.Module): The network.
        frames (list[int] | None): Frame indices; None processes all. Default: None.
        exposure_time (float | None): Window length centred on the timestamp for frames without an exposure
            window. Default: None.
        device (str | torch.device | None): Device; None uses the network's. Default: None.
        tile (int | None): Tile size for tiled inference. Default: None.
        use_mask (bool): Feed EFNet the event mask. Default: True.
        progress (bool): Show a tqdm progress bar. Default: True.
        threshold_mode (str): EDI without a given threshold: ``'joint'`` (one estimate over the frames) or
            ``'per-frame'``. Default: ``'joint'``.
        threshold_window (int): EDI joint mode: frames per estimate, 0 = all. Default: 0.
        denoise (Callable | None): Event filter applied to each window (see :func:`make_denoiser`). Default: None.
        overwrite (bool): Replace result files of an earlier run (else refuse, see :func:`check_out`). Default: False.

    Returns:
        list[dict]: Per frame ``name`` and the written ``sharp``, ``events``, ``panel`` (and EDI ``thresholds``)
        paths.
    """
    method = canonical_method(method)
    if method == 'LowLightEventDeblurNet' and getattr(net, 'rgb', False):
        raise InferenceError('the RGB low-light model needs an RGB image per frame at 3x the APS size; run it '
                             'frame by frame with --image RGB.png --frame K')
    source = open_events(events_path)
    try:
        jobs = []
        for info in _select_frames(source, frames):
            t0, t1 = _frame_exposure(source, info, exposure_time)
            jobs.append(_Job(f'{info.index:06d}', t0, t1, index=info.index,
                             image_name=f'{source.name} frame {info.index}'))
        _validate_jobs(jobs, source, method, net)
        check_out(out_dir, [job.name for job in jobs], overwrite)
        return _run_jobs(jobs, source, method, net, device, tile, use_mask, out_dir, progress, threshold_mode,
                         threshold_window, denoise)
    finally:
        source.close()


def deblur_frames(frames, method, net, device=None, tile=None, use_mask=True, progress=False,
                  threshold_mode='joint', threshold_window=0, denoise=None):
    """Deblurs frames given in memory, each with its own events (e.g. a folder of PNGs and per-frame event files).

    All frames are checked before any is deblurred; EDI estimates its threshold over them as over a recording.
    Nothing is written; see :func:`write_result`.

    Args:
        frames (list[dict]): Per frame ``name`` (str), ``image`` (array as read by OpenCV), ``events``
            (EventStream with the sensor size), ``t_start`` and ``t_end`` (exposure, s, on the events' clock).
        method (str): Method name (not the RGB low-light model).
        net (torch.nn.Module): The network.
        device (str | torch.device | None): Device; None uses the network's. Default: None.
        tile (int | None): Tile size for tiled inference. Default: None.
        use_mask (bool): Feed EFNet the event mask. Default: True.
        progress (bool): Show a tqdm progress bar. Default: False.
        threshold_mode (str): EDI: ``'joint'`` or ``'per-frame'``. Default: ``'joint'``.
        threshold_window (int): EDI joint mode: frames per estimate, 0 = all. Default: 0.
        denoise (Callable | None): Event filter applied to each window. Default: None.

    Returns:
        list[dict]: Per frame ``name`` and the result of :func:`deblur`.
    """
    method = canonical_method(method)
    if method == 'LowLightEventDeblurNet' and getattr(net, 'rgb', False):
        raise InferenceError('deblur_frames does not take the RGB low-light model (it needs an APS frame too); '
                             'use deblur_file')
    jobs = [_Job(str(f['name']), f['t_start'], f['t_end'], image=f['image'], image_name=str(f['name']),
                 source=EventSource.from_stream(f['events'], f'the events of {f["name"]}')) for f in frames]
    _validate_jobs(jobs, None, method, net)
    return _run_jobs(jobs, None, method, net, device, tile, use_mask, None, progress, threshold_mode,
                     threshold_window, denoise)


def deblur_file(events, method, net, image=None, exposure=None, frame=None, aps=None, exposure_time=None,
                sensor_size=None, time_scale=1.0, device=None, tile=None, use_mask=True, denoise=None):
    """Deblurs one frame given by files: an image (or frame ``frame`` of the event file) and an event file.

    Nothing is written; see :func:`write_result`. EDI estimates the threshold of this one frame unless the
    network has one.

    Args:
        events (str | list[str]): Event file (several ``.npz`` chunks allowed).
        method (str): Method name.
        net (torch.nn.Module): The network.
        image (str | np.ndarray | None): Blurry PNG/JPG (or array as read by OpenCV); None takes frame ``frame``
            of the event file. Default: None.
        exposure (tuple[float, float] | None): Exposure window (s); None takes the window of frame ``frame``.
            Default: None.
        frame (int | list[int] | None): Frame index of the event file (exposure window, pixels when ``image`` is
            None, APS frame of the RGB low-light model when ``aps`` is None). Default: None.
        aps (str | np.ndarray | None): Gray APS frame for the RGB low-light model. Default: None.
        exposure_time (float | None): Window length centred on the frame timestamp for frames without a stored
            exposure. Default: None.
        sensor_size (tuple[int, int] | None): Sensor (H, W) for event files that do not store it; None assumes
            the frame size. Default: None.
        time_scale (float): Multiplier to seconds for txt/npy/npz times. Default: 1.0.
        device (str | torch.device | None): Device; None uses the network's. Default: None.
        tile (int | None): Tile size for tiled inference. Default: None.
        use_mask (bool): Feed EFNet the event mask. Default: True.
        denoise (Callable | None): Event filter applied to the window (see :func:`make_denoiser`). Default: None.

    Returns:
        dict: As :func:`deblur`, plus ``t_start``, ``t_end`` (the window used).
    """
    method = canonical_method(method)
    rgb = method == 'LowLightEventDeblurNet' and bool(getattr(net, 'rgb', False))
    if isinstance(frame, (list, tuple)):
        if len(frame) != 1:
            raise InferenceError(f'--frame {list(frame)}: one frame index expected with --image')
        frame = frame[0]
    image_name = image if isinstance(image, (str, os.PathLike)) else 'image'
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image)
    if isinstance(aps, (str, os.PathLike)):
        aps = read_image(aps, '--aps')
    if image is None and frame is None:
        raise InferenceError('no frame to deblur: pass --image (with --exposure or --frame) or --frame K of the '
                             'event file')
    if rgb and aps is None and (frame is None or image is None):
        raise InferenceError('the RGB low-light model needs the RGB --image and the gray APS frame: pass --aps or '
                             '--frame K')
    if exposure is None and frame is None:
        raise InferenceError(f'{image_name}: no exposure window; expected --exposure t0 t1, or --frame K of the '
                             'event file whose exposure is used')
    fallback = None
    if aps is not None:
        fallback = np.shape(aps)[:2]
    elif image is not None and not rgb:
        fallback = np.shape(image)[:2]
    source = open_events(events, None if sensor_size is None else tuple(sensor_size), fallback, time_scale)
    try:
        job = _Job('frame', None, None, image=image, aps=aps, image_name=str(image_name))
        if frame is not None:
            info = _select_frames(source, [frame])[0]
            job.index = info.index
            if image is None:
                job.image_name = f'{source.name} frame {info.index}'
            if exposure is None:
                exposure = _frame_exposure(source, info, exposure_time)
        job.t_start, job.t_end = exposure
        _validate_jobs([job], source, method, net)
        result = _run_jobs([job], source, method, net, device, tile, use_mask, denoise=denoise)[0]
        result.update(t_start=job.t_start, t_end=job.t_end)
        return result
    finally:
        source.close()


def make_denoiser(options):
    """An event filter for the ``denoise`` argument of :func:`deblur` and friends.

    Args:
        options (dict | None): Options of :func:`basicsr.events.denoise.denoise_events`, e.g.
            ``{'ba_window': 0.01, 'hot_pixels': True}``; None or empty keeps every event.

    Returns:
        Callable | None: Maps an ``EventStream`` window to the kept events; None when nothing is filtered.

    Raises:
        InferenceError: For unknown keys or bad values.
    """
    from basicsr.events import EventStream
    from basicsr.events.denoise import check_denoise_options, denoise_events

    try:
        opts = check_denoise_options(options, '--denoise')
    except ValueError as err:
        raise InferenceError(str(err)) from None
    if opts['ba_window'] is None and not opts['hot_pixels']:
        return None

    def denoise(window):
        x, y, t, p = denoise_events(window.x, window.y, window.t, window.p, window.height, window.width, opts)
        return EventStream.from_arrays(x, y, t, p, window.height, window.width)

    return denoise


def parse_key_values(items, what='--net-opt', example='wf=64 or num_heads=[1,2,4]'):
    """Parses ``KEY=VALUE`` command-line items (values in YAML) into a dict.

    Args:
        items (list[str] | None): The items.
        what (str): The option named in errors. Default: ``'--net-opt'``.
        example (str): Example shown in errors. Default: ``'wf=64 or num_heads=[1,2,4]'``.

    Returns:
        dict: Key -> parsed value.

    Raises:
        InferenceError: For an item without ``=`` or a value that is not YAML.
    """
    opts = {}
    for item in items or []:
        if '=' not in item:
            raise InferenceError(f'{what} {item!r}: expected key=value (value in YAML, e.g. {example})')
        key, value = item.split('=', 1)
        try:
            opts[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise InferenceError(f'{what} {item!r}: value is not valid YAML ({err})') from None
    return opts


def _option_file(path):
    if not osp.isfile(path):
        raise InferenceError(f'-opt: option file not found: {path}')
    try:
        with open(path, 'r', encoding='utf-8') as f:
            opt = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise InferenceError(f'-opt {path}: not a readable YAML option file ({err})') from None
    if not isinstance(opt, dict) or not isinstance(opt.get('network_g'), dict):
        raise InferenceError(f'-opt {path}: expected a YAML mapping with a "network_g" section')
    pretrain = (opt.get('path') or {}).get('pretrain_network_g')
    return dict(opt['network_g']), pretrain


def build_parser():
    """Returns the argument parser of ``basicsr/infer.py``.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    p = argparse.ArgumentParser(description='Deblur blurry frames with their events (EFNet, low-light, EDI).',
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--events', nargs='+', required=True,
                   help='event file (.h5, .txt, .csv, .npy, .npz, .aedat4); several .npz chunks allowed')
    p.add_argument('--image', help='blurry PNG/JPG; without it the frames of the event file are deblurred')
    p.add_argument('--aps', help='gray APS PNG for the RGB low-light model (else --frame takes it from the file)')
    p.add_argument('--exposure', nargs=2, type=float, metavar=('T0', 'T1'), help='exposure window in seconds')
    p.add_argument('--frame', nargs='+', type=int, help='frame indices of the event file (default: all frames)')
    p.add_argument('--exposure-time', type=float, help='window length (s) centred on the frame timestamp, for '
                   'frames without stored exposure')
    p.add_argument('--method', choices=METHODS + ('DefaultModel', ), help='method (default: network_g.type of -opt)')
    p.add_argument('--rgb', action='store_true', help='low-light RGB model (RGB image at 3x the APS size)')
    p.add_argument('--checkpoint', help='network weights (.pth); not for EDI')
    p.add_argument('--param-key', default='params', help='checkpoint entry with the weights')
    p.add_argument('--net-opt', action='append', metavar='KEY=VALUE', help='network option (YAML value)')
    p.add_argument('-opt', dest='opt', help='option file whose network_g (and path.pretrain_network_g) are used')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--overwrite', action='store_true', help='replace result files of an earlier run in --out')
    p.add_argument('--name', help='output file stem for a single --image (default: its file name)')
    p.add_argument('--device', default='auto', help='cpu, cuda, cuda:N or auto')
    p.add_argument('--tile', type=int, help='tile size for tiled inference (e.g. 512)')
    p.add_argument('--no-mask', action='store_true', help='run EFNet without the event mask')
    p.add_argument('--sensor-size', nargs=2, type=int, metavar=('H', 'W'), help='sensor size for event files '
                   'that do not store it (default: the frame size)')
    p.add_argument('--time-scale', type=float, default=1.0, help='multiplier to seconds for txt/npy/npz times')
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    edi = p.add_argument_group('EDI', 'contrast threshold (fix it with --net-opt threshold=C)')
    edi.add_argument('--edi-threshold-mode', choices=THRESHOLD_MODES, default='joint',
                     help='estimate one threshold jointly over the frames of the run, or one per frame')
    edi.add_argument('--edi-window', type=int, default=0, metavar='N',
                     help='joint mode: one estimate per N consecutive frames (0: one for the whole run)')
    den = p.add_argument_group('event denoising', 'filters applied to the events of each exposure window (see '
                               'basicsr/events/denoise.py)')
    den.add_argument('--denoise', action='append', metavar='KEY=VALUE',
                     help='denoising option, e.g. ba_window=0.01 (background-activity filter, s) or hot_pixels=true; '
                          f'EDI default: {EDI_DEFAULT_DENOISE or "none"}; other methods: none')
    den.add_argument('--no-denoise', action='store_true', help='keep every event (also for EDI)')
    return p


def _resolve_device(name):
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InferenceError(f'--device {name!r}: expected cpu, cuda, cuda:N or auto') from None
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise InferenceError(f'--device {name}: CUDA is not available on this machine; use --device cpu')
    return device


def main(argv=None):
    """Command-line entry point (raises :class:`InferenceError` on bad input; see the module docstring).

    Args:
        argv (list[str] | None): Arguments; None reads ``sys.argv``. Default: None.

    Returns:
        list[dict]: Per frame ``name`` and the written file paths.
    """
    args = build_parser().parse_args(argv)
    net_opt, checkpoint = {}, None
    if args.opt:
        net_opt, checkpoint = _option_file(args.opt)
    net_opt.update(parse_key_values(args.net_opt))
    method = args.method or net_opt.get('type')
    if method is None:
        raise InferenceError(f'no method: pass --method (one of {list(METHODS)}) or -opt with network_g.type')
    method = canonical_method(method)
    if args.rgb:
        net_opt['rgb'] = True
    checkpoint = args.checkpoint or checkpoint
    if args.exposure is not None and args.image is None:
        raise InferenceError('--exposure needs --image (the frames of an event file carry their own exposure)')
    for path, what in ((args.image, '--image'), (args.aps, '--aps'), (checkpoint, '--checkpoint')):
        if path and not osp.isfile(path):
            raise InferenceError(f'{what}: file not found: {path}')
    for path in args.events:
        if not osp.isfile(path):
            raise InferenceError(f'--events: event file not found: {path}')

    name = None if args.image is None else args.name or osp.splitext(osp.basename(args.image))[0]
    check_out(args.out, [] if name is None else [name], args.overwrite)  # a recording's frames: once they are known
    if args.edi_window < 0:
        raise InferenceError(f'--edi-window {args.edi_window}: expected a number of frames >= 0 (0: the whole run)')
    if args.no_denoise and args.denoise:
        raise InferenceError('--denoise and --no-denoise exclude each other')
    denoise_opts = parse_key_values(args.denoise, '--denoise', 'ba_window=0.01 or hot_pixels=true')
    if not args.denoise and not args.no_denoise and method == 'EDI':
        denoise_opts = EDI_DEFAULT_DENOISE
    denoise = make_denoiser(denoise_opts) if denoise_opts else None
    device = _resolve_device(args.device)
    net = load_method(method, checkpoint, net_opt, device, args.param_key)
    progress = not args.no_progress
    use_mask = not args.no_mask
    if args.image is None:
        if args.aps:
            raise InferenceError('--aps is for a single --image (RGB low-light model)')
        if len(args.events) != 1:
            raise InferenceError('deblurring the frames of a recording needs one .h5 or .aedat4 event file')
        return deblur_recording(args.events[0], args.out, method, net, args.frame, args.exposure_time, device,
                                args.tile, use_mask, progress, args.edi_threshold_mode, args.edi_window, denoise,
                                overwrite=args.overwrite)

    result = deblur_file(args.events, method, net, args.image, args.exposure, args.frame, args.aps,
                         args.exposure_time, args.sensor_size, args.time_scale, device, args.tile, use_mask, denoise)
    return [{'name': name, **write_result(result, args.out, name)}]


def _format_warning(message, category, filename, lineno, line=None):
    return f'warning: {message}\n'


if __name__ == '__main__':
    warnings.formatwarning = _format_warning
    try:
        main()
    except (InferenceError, EventFormatError, ImportError) as error:
        sys.exit(f'error: {error}')
