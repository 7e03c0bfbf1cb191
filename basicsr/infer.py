"""Deblur your own blurry frames with their events: ``python basicsr/infer.py``.

One frame (a PNG/JPG, or an APS frame of the event file) and its exposure window, or a whole recording (every
frame of an event_utils h5 file or an AEDAT4 file, each with its own exposure window)::

    python basicsr/infer.py --events rec.h5 --method EFNet --checkpoint EFNet.pth --video --out results/rec
    python basicsr/infer.py --events events_only.aedat4 --video --out results/events
    python basicsr/infer.py --image blur.png --events ev.txt --exposure 0.10 0.12 --method EDI --out out/
    python basicsr/infer.py --image rgb.png --events rec.aedat4 --frame 7 --method LowLightEventDeblurNet \\
        --checkpoint final_rgb.pth --out out/
    python basicsr/infer.py --events rec.h5 --backend onnxruntime --onnx efnet.onnx --out results/rec

Backend and precision (:mod:`basicsr.deblur.backends`): ``--backend torch`` (default) loads ``--checkpoint``;
``--precision bf16|fp16`` runs it under autocast with fp32 outputs (padded and tiled alike), falls back to fp32 with
a warning where the hardware has no fast support, refuses fp16 on a CPU, and does not apply to EDI (no weights: a
warning, then the usual run). ``--backend onnxruntime --onnx FILE`` runs a file of ``scripts/export_onnx.py`` on the
CPU in fp32 through the same steps (representation, padding, tiling, writing); the method, its options and the
event representation come from the file, which is checked against the sensor size before any inference; it takes
no ``--checkpoint`` (the weights are in the file), no other ``--precision`` and, for EFNet, no ``--no-mask``.

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
exposure, raise an :class:`InferenceError` (or the event core's ``EventFormatError``, the ONNX backend's
``OnnxNetworkError``) naming what is wrong and what was expected; so are an output folder that cannot be written
and results of an earlier run that would be replaced (unless ``--overwrite``). An :class:`InferenceWarning` says
when a frame has almost no events or a result equals its input.

Videos (``--video``): with a method, the frames of a recording also go into ``<out>/side_by_side.mp4`` (blurry |
events | sharp of each frame under a line naming it, the EDI caption with its threshold; ``--fps``, default 10).
Without a method, ``--video`` writes the visualisation video of the events of ``--events`` (any event file, e.g. an
AEDAT4 recording without frames) to ``<out>/events.mp4``: one frame per ``--video-window`` seconds (default 0.033),
in real time unless ``--fps`` is given. An event file without frames cannot be deblurred (a blurry frame is needed);
the error says so and points to ``--video``.

The run ends with a short summary on stdout: frames written and where, the method, its checkpoint (EDI: the
thresholds used, e.g. ``joint 0.165 for 3 frames``), the video and the time per frame. ``--quiet`` prints nothing on
stdout (no progress bar, no summary); warnings and errors go to stderr. A learned method without ``--checkpoint``
stops with a message pointing to the README section "Released weights and data".

This file is the command line only (arguments, messages); the work is done by the inference API
:mod:`basicsr.deblur` (loading a method from its declaration, :func:`deblur` and the drivers, the writers) and the
recording reader :mod:`basicsr.events.recording`. Any registered network that declares an ``inference_spec`` is a
``--method``; an extension package registers its own networks and calls :func:`cli` (as it calls
``basicsr.train.train_pipeline`` and ``basicsr.test.test_pipeline``).
"""
import argparse
import os.path as osp
import sys
import time
import warnings

if __package__ in (None, ''):  # run as a script: make the repository importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
import yaml  # noqa: E402

from basicsr.archs.edi_threshold import THRESHOLD_MODES, THRESHOLDS_FILE  # noqa: E402
from basicsr.deblur import (EventSource, InferenceError, InferenceWarning, canonical_method,  # noqa: E402
                            check_out, deblur, deblur_file, deblur_frames, deblur_recording, inference_methods,
                            load_method, make_denoiser, open_events, read_image, write_result)
from basicsr.deblur.summary import event_video_summary, run_summary  # noqa: E402
from basicsr.deblur.writers import VIDEO_FILE, write_events_video  # noqa: E402
from basicsr.deblur.backends import (BACKENDS, PRECISIONS, check_backend_options, open_onnx,  # noqa: E402
                                     with_precision)
from basicsr.deploy.onnx_runtime import OnnxNetworkError  # noqa: E402
from basicsr.events import EventFormatError  # noqa: E402
from basicsr.events.edi import DEFAULT_DENOISE  # noqa: E402
from basicsr.utils.help_format import DefaultsOnceHelpFormatter  # noqa: E402
from basicsr.utils.registry import ARCH_REGISTRY  # noqa: E402

__all__ = ['InferenceError', 'InferenceWarning', 'deblur', 'deblur_file', 'deblur_frames', 'deblur_recording',
           'open_events', 'EventSource', 'write_result', 'check_out', 'read_image', 'make_denoiser',
           'parse_key_values', 'build_parser', 'main', 'cli', 'THRESHOLDS_FILE', 'EDI_DEFAULT_DENOISE']

# Event denoising EDI gets unless --denoise / --no-denoise say otherwise (options of basicsr.events.denoise; times in
# seconds): the measured recommendation of basicsr.events.edi (a 10 ms background-activity window, hot pixels), which
# EDI declares as its ``inference_denoise``. Kept here for the help text and for scripts that import it.
EDI_DEFAULT_DENOISE = DEFAULT_DENOISE


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
                                formatter_class=DefaultsOnceHelpFormatter)
    p.add_argument('--events', nargs='+', required=True,
                   help='event file (.h5, .txt, .csv, .npy, .npz, .aedat4); several .npz chunks allowed')
    p.add_argument('--image', help='blurry PNG/JPG; without it the frames of the event file are deblurred')
    p.add_argument('--aps', help='gray APS PNG for the RGB low-light model (else --frame takes it from the file)')
    p.add_argument('--exposure', nargs=2, type=float, metavar=('T0', 'T1'), help='exposure window in seconds')
    p.add_argument('--frame', nargs='+', type=int, help='frame indices of the event file (default: all frames)')
    p.add_argument('--exposure-time', type=float, help='window length (s) centred on the frame timestamp, for '
                   'frames without stored exposure')
    methods = inference_methods()
    aliases = tuple(sorted(k for k, cls in ARCH_REGISTRY if cls.__name__ in methods and k != cls.__name__))
    p.add_argument('--method', choices=methods + aliases, help='method (default: network_g.type of -opt)')
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
    p.add_argument('--quiet', action='store_true', help='print nothing on stdout: no progress bar, no summary '
                   '(warnings still go to stderr)')
    vid = p.add_argument_group('videos', f'with --method, a recording\'s frames also as <out>/{VIDEO_FILE} (blurry | '
                               'events | sharp); without --method, the events of --events as <out>/events.mp4')
    vid.add_argument('--video', action='store_true', help='write the video')
    vid.add_argument('--video-window', type=float, default=0.033, metavar='S',
                     help='event video: seconds of events per video frame')
    vid.add_argument('--fps', type=float, help='frames per second (default: 10 for the side-by-side video, real '
                     'time for the event video)')
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
    run = p.add_argument_group('backend and precision', 'what runs the network (see basicsr/deblur/backends.py)')
    run.add_argument('--backend', choices=BACKENDS, default='torch',
                     help='torch (--checkpoint), or onnxruntime (--onnx; CPU, fp32)')
    run.add_argument('--onnx', metavar='FILE', help='ONNX file of scripts/export_onnx.py for --backend onnxruntime; '
                     'the method, its options and the event representation come from the file')
    run.add_argument('--precision', choices=PRECISIONS, default='fp32',
                     help='torch backend: bf16/fp16 run the network under autocast (fp32 outputs); without fast '
                          'hardware support fp32 with a warning; fp16 is refused on CPU; EDI ignores it')
    run.add_argument('--threads', type=int, help='CPU threads of torch or ONNX Runtime (none: their own default)')
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
    check_backend_options(args.backend, args.onnx, args.checkpoint, args.precision)
    method = args.method or net_opt.get('type')
    onnx_net = None
    if args.onnx:  # the file fixes the method, its options and weights
        onnx_net = open_onnx(args.onnx, method, {**net_opt, **({'rgb': True} if args.rgb else {})}, not args.no_mask,
                             args.threads)
        method, checkpoint = onnx_net.method, None
    if method is None and args.video:
        return _event_video(args)
    if method is None:
        raise InferenceError(f'no method: pass --method (one of {list(inference_methods())}) or -opt with '
                             'network_g.type (or --video alone for the video of the events)')
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
    if args.threads is not None and args.threads < 1:
        raise InferenceError(f'--threads {args.threads}: expected a number of threads >= 1')
    if args.no_denoise and args.denoise:
        raise InferenceError('--denoise and --no-denoise exclude each other')
    denoise_opts = parse_key_values(args.denoise, '--denoise', 'ba_window=0.01 or hot_pixels=true')
    if not args.denoise and not args.no_denoise:  # the method's declared default filter, if any (EDI's)
        denoise_opts = getattr(ARCH_REGISTRY.get(method), 'inference_denoise', None) or {}
    denoise = make_denoiser(denoise_opts) if denoise_opts else None
    device = _resolve_device('cpu' if onnx_net is not None and args.device == 'auto' else args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if onnx_net is not None:
        net = onnx_net.to(device)
    else:
        net = with_precision(load_method(method, checkpoint, net_opt, device, args.param_key), args.precision, device,
                             method)
    progress = not (args.no_progress or args.quiet)
    use_mask = not args.no_mask
    start = time.perf_counter()
    if args.image is None:
        if args.aps:
            raise InferenceError('--aps is for a single --image (RGB low-light model)')
        if len(args.events) != 1:
            raise InferenceError('deblurring the frames of a recording needs one .h5 or .aedat4 event file')
        written = deblur_recording(args.events[0], args.out, method, net, args.frame, args.exposure_time, device,
                                   args.tile, use_mask, progress, args.edi_threshold_mode, args.edi_window, denoise,
                                   overwrite=args.overwrite, video=args.video, fps=args.fps)
    else:
        if args.video:
            raise InferenceError('--video is for the frames of a recording (--events rec.h5 without --image); the '
                                 'panel/ picture shows one --image side by side')
        result = deblur_file(args.events, method, net, args.image, args.exposure, args.frame, args.aps,
                             args.exposure_time, args.sensor_size, args.time_scale, device, args.tile, use_mask,
                             denoise)
        written = [{'name': name, **write_result(result, args.out, name), 'record': result['record']}]
    if not args.quiet:
        print(run_summary(written, args.out, method, args.image or args.events[0], time.perf_counter() - start,
                          checkpoint or args.onnx, osp.join(args.out, VIDEO_FILE) if args.video else None), flush=True)
    return written


def _event_video(args):
    """``--video`` without a method: the event-only visualisation video of the event file."""
    if args.image is not None or len(args.events) != 1:
        raise InferenceError('--video without --method writes the video of one event file; pass one --events file '
                             'and no --image (or a --method to deblur)')
    read_kwargs = {} if args.time_scale == 1.0 else {'time_scale': args.time_scale}
    if args.sensor_size:
        read_kwargs.update(height=args.sensor_size[0], width=args.sensor_size[1])
    start = time.perf_counter()
    result = write_events_video(args.events[0], args.out, args.video_window, args.fps, args.overwrite, **read_kwargs)
    if not args.quiet:
        print(event_video_summary(result, args.events[0], args.video_window, time.perf_counter() - start), flush=True)
    return [result]


def _format_warning(message, category, filename, lineno, line=None):
    return f'warning: {message}\n'


def cli(argv=None):
    """Runs the command line as a program: warnings as ``warning: ...`` lines, bad input as ``error: ...`` and
    exit status 1. Extension packages call it after registering their networks.

    Args:
        argv (list[str] | None): Arguments; None reads ``sys.argv``. Default: None.

    Returns:
        list[dict]: As :func:`main`.
    """
    warnings.formatwarning = _format_warning
    try:
        return main(argv)
    except (InferenceError, EventFormatError, OnnxNetworkError, ImportError) as error:
        sys.exit(f'error: {error}')


if __name__ == '__main__':
    cli()
