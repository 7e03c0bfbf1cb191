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

Outputs (written atomically): ``<out>/sharp/<name>.png``, ``<out>/events/<name>.png`` (net polarity of the
window's events: red positive, blue negative) and ``<out>/panel/<name>.png`` (blurry | events | sharp). Every
input is checked before the first file is written: a bad file, window, frame size or checkpoint raises an
:class:`InferenceError` (or the event core's ``EventFormatError``) naming what is wrong and what was expected. So
are an output folder that cannot be written and results of an earlier run that would be replaced (unless
``--overwrite``), before any inference runs.
"""
import argparse
import os
import os.path as osp
import sys
from dataclasses import dataclass

if __package__ in (None, ''):  # run as a script: make the repository importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from basicsr.events import EventFormatError, event_frame  # noqa: E402
from basicsr.models.deblur_methods import (METHODS, InferenceError, canonical_method, check_frame_size,  # noqa: E402
                                           load_method, method_batch, network_inputs)
from basicsr.models.inference import forward_padded, forward_tiled  # noqa: E402
from basicsr.utils.img_util import imread, imwrite, make_panel, tensor2img  # noqa: E402
from basicsr.utils.output_check import OutputFolderError, check_writable  # noqa: E402

__all__ = ['InferenceError', 'deblur', 'deblur_file', 'deblur_recording', 'open_events', 'EventSource', 'write_result',
           'check_out', 'read_image', 'main']


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

    def span(self):
        """str: The time span of the events, for messages."""
        if self._reader is not None:
            n = self._reader.num_events
            return 'no events' if n == 0 else f'[{self._reader.read_slice(0, 1).t[0]}, ' \
                                              f'{self._reader.read_slice(n - 1, n).t[0]}] s'
        s = self._stream
        return 'no events' if len(s) == 0 else f'[{s.t[0]}, {s.t[-1]}] s'

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


def deblur(image, events, t_start, t_end, method, net, aps=None, device=None, tile=None, use_mask=True,
           image_name='image', events_name='events'):
    """Deblurs one frame with the events of its exposure window.

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
        image_name (str): Named in errors. Default: ``'image'``.
        events_name (str): Named in errors. Default: ``'events'``.

    Returns:
        dict: ``sharp`` uint8 image to write (BGR (H, W, 3) or gray (H, W)); ``sharp_float`` float32 (C, H, W)
        network output in the network's channel order, unclamped; ``events`` uint8 BGR event picture; ``panel``
        uint8 BGR blurry | events | sharp; ``representation`` float32 un-normalised event tensor (C, H, W).

    Raises:
        InferenceError: For a frame size that does not fit the sensor or a window without events.
    """
    method = canonical_method(method)
    rgb = method == 'LowLightEventDeblurNet' and bool(getattr(net, 'rgb', False))
    t_start, t_end = _check_exposure(t_start, t_end, image_name)
    check_frame_size(np.shape(image), events.shape, rgb, None if aps is None else np.shape(aps), image_name,
                     events_name)
    window = events.window(t_start, t_end, closed='both', allow_empty=True)
    if len(window) == 0:
        span = 'no events' if len(events) == 0 else f'[{events.t[0]}, {events.t[-1]}] s'
        raise _empty_window(t_start, t_end, image_name, events_name, span)
    return _deblur_window(image, window, t_start, t_end, method, net, aps, device, tile, use_mask)


def _deblur_window(image, window, t_start, t_end, method, net, aps, device, tile, use_mask):
    device = _device_of(net, device)
    batch, rep = method_batch(method, net, image, window, t_start, t_end, aps)
    if method == 'EFNet' and not use_mask:
        batch['mask'] = None
    inputs = network_inputs(net, batch, device)
    with torch.inference_mode():
        result = _run_network(net, inputs, tile)
    sharp_float = result[0].float().cpu().numpy()
    rgb_out = method == 'LowLightEventDeblurNet' and net.rgb
    sharp = tensor2img(result[0].float().cpu(), rgb2bgr=rgb_out)
    picture = event_frame(window.x, window.y, window.p, window.height, window.width)[:, :, ::-1]
    picture = np.ascontiguousarray(picture)
    return {'sharp': sharp, 'sharp_float': sharp_float, 'events': picture, 'panel': make_panel([image, picture, sharp]),
            'representation': rep}


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
    """Writes ``sharp/<name>.png``, ``events/<name>.png`` and ``panel/<name>.png`` atomically.

    Args:
        result (dict): Returned by :func:`deblur`.
        out_dir (str): Output folder.
        name (str): File stem.

    Returns:
        dict: ``kind -> path`` of the written files.
    """
    paths = {}
    for kind in RESULT_KINDS:
        path = osp.join(out_dir, kind, f'{name}.png')
        imwrite(result[kind], path)
        paths[kind] = path
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
    """Checks every job (frame size, window with events) before anything is written."""
    rgb = method == 'LowLightEventDeblurNet' and bool(getattr(net, 'rgb', False))
    for job in jobs:
        job.t_start, job.t_end = _check_exposure(job.t_start, job.t_end, job.image_name)
        shape = np.shape(job.image) if job.image is not None else source.frames[job.index].shape
        aps_shape = None
        if rgb:
            if job.aps is not None:
                aps_shape = np.shape(job.aps)
            elif job.index is not None and job.image is not None:
                aps_shape = source.frames[job.index].shape
        check_frame_size(shape, source.shape, rgb, aps_shape, job.image_name, source.name)
        if source.count(job.t_start, job.t_end) == 0:
            raise _empty_window(job.t_start, job.t_end, job.image_name, source.name, source.span())


def _process(jobs, source, method, net, out_dir, device, tile, use_mask, progress):
    from tqdm import tqdm

    rgb = method == 'LowLightEventDeblurNet' and bool(getattr(net, 'rgb', False))
    written = []
    for job in tqdm(jobs, desc=f'{method} deblurring', unit='frame', disable=not progress):
        image = job.image if job.image is not None else source.frame_image(job.index)
        aps = job.aps
        if rgb and aps is None and job.index is not None:
            aps = source.frame_image(job.index)
        window = source.window(job.t_start, job.t_end)
        result = _deblur_window(image, window, job.t_start, job.t_end, method, net, aps, device, tile, use_mask)
        written.append({'name': job.name, **write_result(result, out_dir, job.name)})
    return written


def deblur_recording(events_path, out_dir, method, net, frames=None, exposure_time=None, device=None, tile=None,
                     use_mask=True, progress=True, overwrite=False):
    """Deblurs every frame of a recording (event_utils h5 ``images/*`` or AEDAT4 APS frames) with its exposure.

    All frames are checked (size, exposure window, events in the window) before the first file is written.

    Args:
        events_path (str): ``.h5`` or ``.aedat4`` file with frames.
        out_dir (str): Output folder (``sharp/``, ``events/``, ``panel/`` with ``<index:06d>.png``).
        method (str): Method name.
        net (torch.nn.Module): The network.
        frames (list[int] | None): Frame indices; None processes all. Default: None.
        exposure_time (float | None): Window length centred on the timestamp for frames without an exposure
            window. Default: None.
        device (str | torch.device | None): Device; None uses the network's. Default: None.
        tile (int | None): Tile size for tiled inference. Default: None.
        use_mask (bool): Feed EFNet the event mask. Default: True.
        progress (bool): Show a tqdm progress bar. Default: True.
        overwrite (bool): Replace result files of an earlier run (else refuse, see :func:`check_out`). Default: False.

    Returns:
        list[dict]: Per frame ``name`` and the written ``sharp``, ``events``, ``panel`` paths.
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
        return _process(jobs, source, method, net, out_dir, device, tile, use_mask, progress)
    finally:
        source.close()


def deblur_file(events, method, net, image=None, exposure=None, frame=None, aps=None, exposure_time=None,
                sensor_size=None, time_scale=1.0, device=None, tile=None, use_mask=True):
    """Deblurs one frame given by files: an image (or frame ``frame`` of the event file) and an event file.

    Nothing is written; see :func:`write_result`.

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
        image = job.image if job.image is not None else source.frame_image(job.index)
        if rgb and aps is None:
            aps = source.frame_image(job.index)
        result = _deblur_window(image, source.window(job.t_start, job.t_end), job.t_start, job.t_end, method, net,
                                aps, device, tile, use_mask)
        result.update(t_start=job.t_start, t_end=job.t_end)
        return result
    finally:
        source.close()


def _parse_net_opts(items):
    opts = {}
    for item in items or []:
        if '=' not in item:
            raise InferenceError(f'--net-opt {item!r}: expected key=value (value in YAML, e.g. wf=64 or '
                                 'num_heads=[1,2,4])')
        key, value = item.split('=', 1)
        try:
            opts[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise InferenceError(f'--net-opt {item!r}: value is not valid YAML ({err})') from None
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
    net_opt.update(_parse_net_opts(args.net_opt))
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
                                args.tile, use_mask, progress, args.overwrite)

    result = deblur_file(args.events, method, net, args.image, args.exposure, args.frame, args.aps,
                         args.exposure_time, args.sensor_size, args.time_scale, device, args.tile, use_mask)
    return [{'name': name, **write_result(result, args.out, name)}]


if __name__ == '__main__':
    try:
        main()
    except (InferenceError, EventFormatError, ImportError) as error:
        sys.exit(f'error: {error}')
