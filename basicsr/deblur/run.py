"""Deblurring runs: one frame (:func:`deblur`), a file (:func:`deblur_file`), frames in memory
(:func:`deblur_frames`) and every frame of a recording (:func:`deblur_recording`).

Every frame of a run is checked (frame size against the sensor, exposure window, events covering it) before the
first is deblurred or written. A network that decides something per run (EDI: the contrast threshold, jointly over
the frames or per frame) does so through its ``plan_frames`` hook before the first frame; each frame then goes
through :func:`basicsr.deblur.frame.deblur_window`.
"""
import os
from dataclasses import dataclass

import numpy as np

from basicsr.archs.method_spec import check_image_sizes, spec_of
from basicsr.deblur.frame import deblur_window, frame_inputs, image_scale, needs_aps
from basicsr.deblur.methods import canonical_method
from basicsr.deblur.writers import VIDEO_FILE, SideBySideVideo, check_out, write_result
from basicsr.events.recording import (EventSource, check_exposure, check_window, frame_exposure, open_events,
                                      select_frames)
from basicsr.utils.img_util import imread
from basicsr.utils.inference_errors import InferenceError

__all__ = ['deblur', 'deblur_file', 'deblur_frames', 'deblur_recording', 'make_denoiser', 'read_image']


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


def _method(method, net):
    """The declaration of ``net`` as the named method."""
    return spec_of(net, canonical_method(method))


def _validate_jobs(jobs, source, spec, net=None):
    """Checks every job (frame size, window with events covering it) before anything is written; a network made
    for some sizes only (an ONNX file exported at a fixed size: ``check_size``) checks the sensor size."""
    check_size = getattr(net, 'check_size', None)
    for job in jobs:
        events = job.source or source
        if check_size is not None:
            check_size(*events.shape)
        job.t_start, job.t_end = check_exposure(job.t_start, job.t_end, job.image_name)
        shape = np.shape(job.image) if job.image is not None else source.frames[job.index].shape
        aps_shape = None
        if needs_aps(spec):
            if job.aps is not None:
                aps_shape = np.shape(job.aps)
            elif job.index is not None and job.image is not None:
                aps_shape = source.frames[job.index].shape
        try:
            check_image_sizes(spec, events.shape, shape, aps_shape, job.image_name, events.name)
        except ValueError as err:
            raise InferenceError(str(err)) from None
        check_window(events, job.t_start, job.t_end, job.image_name)


def _job_inputs(job, source, spec, denoise):
    """The image, APS frame and (denoised) event window of a job."""
    events = job.source or source
    image = job.image if job.image is not None else source.frame_image(job.index)
    aps = job.aps
    if needs_aps(spec) and aps is None and job.index is not None:
        aps = source.frame_image(job.index)
    window = events.window(job.t_start, job.t_end)
    if denoise is not None:
        window = denoise(window)
    return image, aps, window


def _plan(jobs, source, spec, net, threshold_mode, threshold_window, denoise):
    """The network's decision per job (``plan_frames``, e.g. EDI's thresholds); None per job without the hook."""
    plan_frames = getattr(net, 'plan_frames', None)
    if plan_frames is None:
        return [None] * len(jobs)

    def load_frame(k):
        job = jobs[k]
        image, aps, window = _job_inputs(job, source, spec, denoise)
        batch, _ = frame_inputs(spec, image, window, job.t_start, job.t_end, aps)
        return batch, window, job.t_start, job.t_end

    return plan_frames([job.image_name for job in jobs], load_frame, mode=threshold_mode, window=threshold_window)


def _run_jobs(jobs, source, spec, net, device, tile, use_mask, out_dir=None, progress=False,
              threshold_mode='joint', threshold_window=0, denoise=None, video=None):
    """Deblurs validated jobs (per-run decisions first); writes each result when ``out_dir`` is given, and adds
    it to ``video`` (a :class:`~basicsr.deblur.writers.SideBySideVideo`) when given.

    Returns:
        list[dict]: Per job ``name`` plus the written paths and the frame's ``record`` (``out_dir``), or the
        result of :func:`deblur`.
    """
    from tqdm import tqdm

    records = _plan(jobs, source, spec, net, threshold_mode, threshold_window, denoise)
    origin = min((job.t_start for job in jobs), default=0.0)
    done = []
    for job, record in zip(tqdm(jobs, desc=f'{spec.name} deblurring', unit='frame', disable=not progress), records):
        image, aps, window = _job_inputs(job, source, spec, denoise)
        result = deblur_window(spec, net, image, window, job.t_start, job.t_end, aps, device, tile, use_mask, record,
                               job.image_name)
        if video is not None:  # the exposure's middle, in seconds from the first exposure's start
            t_mid = (job.t_start + job.t_end) / 2 - origin
            video.add(image, result, f'{os.path.basename(job.image_name)}  t = {t_mid:.3f} s')  # file name, no folder
        if out_dir:
            result = {**write_result(result, out_dir, job.name), 'record': result['record']}
        done.append({'name': job.name, **result})
    return done


def deblur(image, events, t_start, t_end, method, net, aps=None, device=None, tile=None, use_mask=True,
           image_name='image', events_name='events', denoise=None):
    """Deblurs one frame with the events of its exposure window.

    A network that decides per run (EDI's threshold) decides for this one frame (see :func:`deblur_frames` for a
    decision taken jointly over several frames).

    Args:
        image (np.ndarray): Blurry frame as read by OpenCV (BGR colour or gray; uint8, uint16 or float in [0, 1]);
            for a method that deblurs another camera's image besides the APS frame, that image (e.g. RGB at 3x).
        events (EventStream): Events (all, or already windowed) with the sensor size.
        t_start (float): Exposure start (s), on the events' clock.
        t_end (float): Exposure end (s); the window is ``[t_start, t_end]``.
        method (str): Registered method name (see :func:`basicsr.deblur.methods.inference_methods`).
        net (torch.nn.Module): The network of that method (see :func:`basicsr.deblur.methods.load_method`).
        aps (np.ndarray | None): Gray APS frame, for methods that take one. Default: None.
        device (str | torch.device | None): Device; None uses the network's. Default: None.
        tile (int | None): Tile size for tiled inference; None runs the whole (padded) frame. Default: None.
        use_mask (bool): Feed the event mask when the method declares one (EFNet's EMGC, as the released weights
            were trained). Default: True.
        image_name (str): Named in errors and warnings. Default: ``'image'``.
        events_name (str): Named in errors. Default: ``'events'``.
        denoise (Callable | None): Maps the window's ``EventStream`` to a denoised one (see
            :func:`make_denoiser`); None keeps every event. Default: None.

    Returns:
        dict: ``sharp`` uint8 image to write (BGR (H, W, 3) or gray (H, W)); ``sharp_float`` float32 (C, H, W)
        network output in the network's channel order, unclamped; ``events`` uint8 BGR event picture; ``panel``
        uint8 BGR blurry | events | sharp; ``label`` the caption of the sharp tile (the method; EDI's gives its
        threshold); ``representation`` float32 un-normalised event tensor (C, H, W); ``record`` what the network
        decided for the frame (EDI: its :class:`~basicsr.archs.edi_threshold.ThresholdChoice`; None for networks),
        also under its former name ``threshold``.

    Raises:
        InferenceError: For a frame size that does not fit the sensor, a window without events or events that do
            not cover it.
    """
    spec = _method(method, net)
    source = EventSource.from_stream(events, events_name)
    job = _Job('frame', t_start, t_end, image=image, aps=aps, image_name=image_name)
    _validate_jobs([job], source, spec, net)
    return _run_jobs([job], source, spec, net, device, tile, use_mask, denoise=denoise)[0]


def deblur_recording(events_path, out_dir, method, net, frames=None, exposure_time=None, device=None, tile=None,
                     use_mask=True, progress=True, threshold_mode='joint', threshold_window=0, denoise=None,
                     overwrite=False, video=False, fps=None):
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
        use_mask (bool): Feed the declared event mask. Default: True.
        progress (bool): Show a tqdm progress bar. Default: True.
        threshold_mode (str): Per-run decision (EDI without a given threshold): ``'joint'`` (one estimate over the
            frames) or ``'per-frame'``. Default: ``'joint'``.
        threshold_window (int): Joint mode: frames per estimate, 0 = all. Default: 0.
        denoise (Callable | None): Event filter applied to each window (see :func:`make_denoiser`). Default: None.
        overwrite (bool): Replace result files of an earlier run (else refuse, see
            :func:`basicsr.deblur.writers.check_out`). Default: False.
        video (bool): Also write the side-by-side video ``<out_dir>/side_by_side.mp4`` (blurry | events | sharp
            of every frame, see :class:`basicsr.deblur.writers.SideBySideVideo`). Default: False.
        fps (float | None): The video's frames per second; None: 10. Default: None.

    Returns:
        list[dict]: Per frame ``name``, the written ``sharp``, ``events``, ``panel`` (and EDI ``thresholds``)
        paths and the frame's ``record`` (EDI: its threshold choice; None for networks).
    """
    spec = _method(method, net)
    if needs_aps(spec):
        raise InferenceError(f'{spec.description} deblurs an image besides the APS frame (at {image_scale(spec)}x '
                             'the APS size), which a recording does not hold; run it frame by frame with --image '
                             'IMAGE --frame K')
    source = open_events(events_path)
    try:
        jobs = []
        for info in select_frames(source, frames):
            t0, t1 = frame_exposure(source, info, exposure_time)
            jobs.append(_Job(f'{info.index:06d}', t0, t1, index=info.index,
                             image_name=f'{source.name} frame {info.index}'))
        _validate_jobs(jobs, source, spec, net)
        check_out(out_dir, [job.name for job in jobs], overwrite, [VIDEO_FILE] if video else [])
        if not video:
            return _run_jobs(jobs, source, spec, net, device, tile, use_mask, out_dir, progress, threshold_mode,
                             threshold_window, denoise)
        with SideBySideVideo(out_dir, fps) as writer:
            return _run_jobs(jobs, source, spec, net, device, tile, use_mask, out_dir, progress, threshold_mode,
                             threshold_window, denoise, writer)
    finally:
        source.close()


def deblur_frames(frames, method, net, device=None, tile=None, use_mask=True, progress=False,
                  threshold_mode='joint', threshold_window=0, denoise=None):
    """Deblurs frames given in memory, each with its own events (e.g. a folder of PNGs and per-frame event files).

    All frames are checked before any is deblurred; a per-run decision (EDI's threshold) is taken over them as over
    a recording. Nothing is written; see :func:`basicsr.deblur.writers.write_result`.

    Args:
        frames (list[dict]): Per frame ``name`` (str), ``image`` (array as read by OpenCV), ``events``
            (EventStream with the sensor size), ``t_start`` and ``t_end`` (exposure, s, on the events' clock).
        method (str): Method name (not one that also takes an APS frame).
        net (torch.nn.Module): The network.
        device (str | torch.device | None): Device; None uses the network's. Default: None.
        tile (int | None): Tile size for tiled inference. Default: None.
        use_mask (bool): Feed the declared event mask. Default: True.
        progress (bool): Show a tqdm progress bar. Default: False.
        threshold_mode (str): Per-run decision: ``'joint'`` or ``'per-frame'``. Default: ``'joint'``.
        threshold_window (int): Joint mode: frames per estimate, 0 = all. Default: 0.
        denoise (Callable | None): Event filter applied to each window. Default: None.

    Returns:
        list[dict]: Per frame ``name`` and the result of :func:`deblur`.
    """
    spec = _method(method, net)
    if needs_aps(spec):
        raise InferenceError(f'deblur_frames does not take {spec.description} (it needs an APS frame too); use '
                             'deblur_file')
    jobs = [_Job(str(f['name']), f['t_start'], f['t_end'], image=f['image'], image_name=str(f['name']),
                 source=EventSource.from_stream(f['events'], f'the events of {f["name"]}')) for f in frames]
    _validate_jobs(jobs, None, spec, net)
    return _run_jobs(jobs, None, spec, net, device, tile, use_mask, None, progress, threshold_mode,
                     threshold_window, denoise)


def deblur_file(events, method, net, image=None, exposure=None, frame=None, aps=None, exposure_time=None,
                sensor_size=None, time_scale=1.0, device=None, tile=None, use_mask=True, denoise=None):
    """Deblurs one frame given by files: an image (or frame ``frame`` of the event file) and an event file.

    Nothing is written; see :func:`basicsr.deblur.writers.write_result`. A per-run decision (EDI's threshold) is
    taken for this one frame unless the network has it fixed.

    Args:
        events (str | list[str]): Event file (several ``.npz`` chunks allowed).
        method (str): Method name.
        net (torch.nn.Module): The network.
        image (str | np.ndarray | None): Blurry PNG/JPG (or array as read by OpenCV); None takes frame ``frame``
            of the event file. Default: None.
        exposure (tuple[float, float] | None): Exposure window (s); None takes the window of frame ``frame``.
            Default: None.
        frame (int | list[int] | None): Frame index of the event file (exposure window, pixels when ``image`` is
            None, APS frame when the method takes one and ``aps`` is None). Default: None.
        aps (str | np.ndarray | None): Gray APS frame, for methods that take one. Default: None.
        exposure_time (float | None): Window length centred on the frame timestamp for frames without a stored
            exposure. Default: None.
        sensor_size (tuple[int, int] | None): Sensor (H, W) for event files that do not store it; None assumes
            the frame size. Default: None.
        time_scale (float): Multiplier to seconds for txt/npy/npz times. Default: 1.0.
        device (str | torch.device | None): Device; None uses the network's. Default: None.
        tile (int | None): Tile size for tiled inference. Default: None.
        use_mask (bool): Feed the declared event mask. Default: True.
        denoise (Callable | None): Event filter applied to the window (see :func:`make_denoiser`). Default: None.

    Returns:
        dict: As :func:`deblur`, plus ``t_start``, ``t_end`` (the window used).
    """
    spec = _method(method, net)
    with_aps = needs_aps(spec)
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
    if with_aps and aps is None and (frame is None or image is None):
        raise InferenceError(f'{spec.description} needs the --image to deblur and the gray APS frame: pass --aps or '
                             '--frame K')
    if exposure is None and frame is None:
        raise InferenceError(f'{image_name}: no exposure window; expected --exposure t0 t1, or --frame K of the '
                             'event file whose exposure is used')
    fallback = None
    if aps is not None:
        fallback = np.shape(aps)[:2]
    elif image is not None and image_scale(spec) == 1:
        fallback = np.shape(image)[:2]
    source = open_events(events, None if sensor_size is None else tuple(sensor_size), fallback, time_scale)
    try:
        job = _Job('frame', None, None, image=image, aps=aps, image_name=str(image_name))
        if frame is not None:
            info = select_frames(source, [frame])[0]
            job.index = info.index
            if image is None:
                job.image_name = f'{source.name} frame {info.index}'
            if exposure is None:
                exposure = frame_exposure(source, info, exposure_time)
        job.t_start, job.t_end = exposure
        _validate_jobs([job], source, spec, net)
        result = _run_jobs([job], source, spec, net, device, tile, use_mask, denoise=denoise)[0]
        result.update(t_start=job.t_start, t_end=job.t_end)
        return result
    finally:
        source.close()
