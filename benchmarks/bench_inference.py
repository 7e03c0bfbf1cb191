"""Forward time and peak memory of the restoration networks on CPU, fast inference path against the plain one.

Usage::

    python benchmarks/bench_inference.py [--nets efnet lowlight_aps lowlight_rgb] [--sizes 256x256 720x1280]
                                         [--crop 256] [--reps 2] [--variants plain fast fast_cl] [--modes whole tiled]

By default: EFNet (wf=64) at 256×256 and 720×1280, whole and tiled; the low-light network (init_dim 64, APS and
hybrid RGB) on the full DAVIS346 frame 260×346 (RGB image 780×1038), whole frame (padded to its 8×40 multiple).

For every network, frame size and mode (``whole`` frame through ``forward_padded``, or ``tiled`` through
``forward_tiled`` with ``--crop`` tiles) it runs each variant in a fresh subprocess:

- ``plain``: the reference way, eager under ``torch.no_grad()``, default (contiguous) memory format;
- ``fast``: ``torch.inference_mode()`` (no autograd bookkeeping; EFNet then also runs its EICA MLP on bands of rows
  and its conv blocks in place), default memory format;
- ``fast_cl``: ``fast`` with ``channels_last`` inputs (convolutions in NHWC), the default of the helpers on CPU.

Time: best of ``--reps`` forwards (1 for frames above 0.5 megapixel) after a warm-up forward at 64×64 that takes the
one-off costs (oneDNN primitive creation, thread-pool start), as wall time and as process CPU time; CPU time is less
disturbed by other work on a shared machine. ``wall x`` and ``cpu x`` are plain / variant (above 1 = faster).

Peak memory: the rise of the process's peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) over
the timed forwards, above the level reached once the model, the inputs and the warm-up exist. It counts everything
the forward really touches (activations, oneDNN scratch and reordered buffers, allocator slack), which is why each
case runs in a fresh process (the peak of a process never goes down). ``tracemalloc`` sees only Python allocations
and would miss the tensors. ``mem x`` is variant / plain (below 1 = less memory).

Every variant's final output (EFNet ``out_2``, low-light ``S``) is compared with the ``plain`` one (max |Δ|).
Absolute figures depend on whatever else the machine is doing; compare the ratios within one run.
"""
import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from basicsr.archs.efnet_arch import EFNet  # noqa: E402
from basicsr.archs.lowlight_arch import LowLightEventDeblurNet  # noqa: E402
from basicsr.models.inference import forward_padded, forward_tiled  # noqa: E402

VARIANTS = ('plain', 'fast', 'fast_cl')
MODES = ('whole', 'tiled')


def make_efnet(height, width, seed=0):
    """Full-width EFNet (wf=64, random weights) with a frame, a SCER-like event tensor and a mask.

    Args:
        height (int): Frame height.
        width (int): Frame width.
        seed (int): Seed of weights and inputs. Default: 0.

    Returns:
        tuple[nn.Module, dict[str, Tensor], int]: Network in eval mode, inputs for ``net(**inputs)`` and the size
        multiple it needs.
    """
    torch.manual_seed(seed)
    net = EFNet(wf=64).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    inputs = {
        'x': torch.rand(1, 3, height, width, generator=gen),
        'event': torch.randn(1, 6, height, width, generator=gen),
        'mask': (torch.rand(1, 1, height, width, generator=gen) > 0.7).float(),
    }
    return net, inputs, net.size_multiple


def make_lowlight(height, width, seed=0, rgb=False):
    """Full-width low-light network (init_dim 64, random weights after ``init_weights``) with a sparse voxel grid,
    a dark blurry APS frame and, for the RGB model, the image at 3× the event resolution.

    Args:
        height (int): Event / APS frame height.
        width (int): Event / APS frame width.
        seed (int): Seed of weights and inputs. Default: 0.
        rgb (bool): Hybrid RGB model (``Bi`` at 3× the frame size). Default: False.

    Returns:
        tuple[nn.Module, dict[str, Tensor], tuple[int, int]]: As :func:`make_efnet`.
    """
    torch.manual_seed(seed)
    net = LowLightEventDeblurNet(init_dim=64, rgb=rgb)
    net.init_weights()
    net.eval()
    gen = torch.Generator().manual_seed(seed + 1)
    events = torch.randn(1, 13, height, width, generator=gen)
    events = events * (torch.rand(1, 13, height, width, generator=gen) < 0.3)
    aps = torch.rand(1, 1, height, width, generator=gen) * 0.3
    image = torch.rand(1, 3, 3 * height, 3 * width, generator=gen) * 0.3 if rgb else aps
    return net, {'E': events, 'B': aps, 'Bi': image}, net.size_multiple


NETWORKS = {'efnet': make_efnet, 'lowlight_aps': make_lowlight,
            'lowlight_rgb': functools.partial(make_lowlight, rgb=True)}
# Frame sizes and modes measured when --sizes / --modes are not given: EFNet at GoPro and crop sizes; the low-light
# network on the full DAVIS346 frame (its RGB image is 780×1038), whole frame only (its attention is not local).
DEFAULTS = {'efnet': ([(256, 256), (720, 1280)], MODES), 'lowlight_aps': ([(260, 346)], ('whole', )),
            'lowlight_rgb': ([(260, 346)], ('whole', ))}


def run_case(net_name, height, width, mode, variant, crop, reps, out_path):
    """Runs one case in the current process and returns its measurements (the worker of a subprocess).

    Args:
        net_name (str): Key of :data:`NETWORKS`.
        height (int): Frame height.
        width (int): Frame width.
        mode (str): ``'whole'`` or ``'tiled'``.
        variant (str): One of :data:`VARIANTS`.
        crop (int): Tile size for ``'tiled'``.
        reps (int): Timed forwards.
        out_path (str): Where the last output is saved (``.npy``) for the comparison.

    Returns:
        dict: ``seconds`` (best wall time), ``cpu_seconds`` (best process CPU time), ``all_seconds``, ``peak_mb``
        (rise of peak RSS), ``shape``.
    """
    net, inputs, multiple = NETWORKS[net_name](height, width)
    warm_inputs = {k: (v[..., :64 * v.shape[-2] // height, :64 * v.shape[-1] // width] if v is not None else None)
                   for k, v in inputs.items()}
    inference = variant != 'plain'
    channels_last = variant == 'fast_cl'

    def forward(frame_inputs):
        if mode == 'whole':
            return forward_padded(net, frame_inputs, multiple, inference=inference, channels_last=channels_last)
        return forward_tiled(net, frame_inputs, crop, multiple, inference=inference, channels_last=channels_last)

    with torch.no_grad():
        forward(warm_inputs)
        base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        times, cpu_times = [], []
        for _ in range(reps):
            start, cpu_start = time.perf_counter(), time.process_time()
            outputs = forward(inputs)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = outputs[-1].contiguous().numpy()
    tmp = f'{out_path}.tmp.npy'
    np.save(tmp, result)
    os.replace(tmp, out_path)
    return {'seconds': min(times), 'cpu_seconds': min(cpu_times), 'all_seconds': times,
            'peak_mb': (peak_kb - base_kb) / 1024, 'shape': list(result.shape)}


def _spawn(case, workdir):
    out_path = os.path.join(workdir, f'{case["net_name"]}_{case["height"]}x{case["width"]}_{case["mode"]}_'
                            f'{case["variant"]}.npy')
    cmd = [sys.executable, __file__, '--worker', json.dumps(dict(case, out_path=out_path))]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f'case {case} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1]), out_path


def _parse_size(text):
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'size must look like 256x256, got {text!r}') from err
    return h, w


def main():
    """Parses the command line and runs or prints every case."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--nets', nargs='+', default=list(NETWORKS), choices=sorted(NETWORKS))
    parser.add_argument('--sizes', nargs='+', type=_parse_size, default=None,
                        help='frame sizes HxW (event resolution); default per network (DEFAULTS)')
    parser.add_argument('--modes', nargs='+', default=None, choices=MODES, help='default per network (DEFAULTS)')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument('--crop', type=int, default=256, help='tile size of the tiled mode')
    parser.add_argument('--reps', type=int, default=2, help='timed forwards per case (1 above 0.5 megapixel)')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        case = json.loads(args.worker)
        print(json.dumps(run_case(**case)))
        return

    variants = ['plain'] + [v for v in args.variants if v != 'plain']
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads; peak = rise of peak RSS in a fresh process')
    header = f'{"net":8s} {"size":>10s} {"mode":6s} {"variant":8s} {"wall s":>8s} {"cpu s":>8s} {"peak MB":>8s} ' \
             f'{"wall x":>7s} {"cpu x":>7s} {"mem x":>7s} {"max|Δ|":>9s}'
    with tempfile.TemporaryDirectory(prefix='bench_inference_') as workdir:
        for net_name in args.nets:
            sizes, modes = args.sizes or DEFAULTS[net_name][0], args.modes or DEFAULTS[net_name][1]
            for height, width in sizes:
                reps = 1 if height * width > 500_000 else args.reps
                for mode in modes:
                    print(header if mode == modes[0] else '', flush=True)
                    plain, plain_out = None, None
                    for variant in variants:
                        print(f'  ... {net_name} {height}x{width} {mode} {variant} ({reps} rep)', flush=True)
                        case = {'net_name': net_name, 'height': height, 'width': width, 'mode': mode,
                                'variant': variant, 'crop': args.crop, 'reps': reps}
                        res, out_path = _spawn(case, workdir)
                        out = np.load(out_path)
                        if plain is None:
                            plain, plain_out = res, out
                        delta = float(np.abs(out - plain_out).max())
                        speed = plain['seconds'] / res['seconds']
                        cpu_speed = plain['cpu_seconds'] / res['cpu_seconds']
                        mem = res['peak_mb'] / plain['peak_mb'] if plain['peak_mb'] > 0 else float('nan')
                        print(f'{net_name:8s} {f"{height}x{width}":>10s} {mode:6s} {variant:8s} '
                              f'{res["seconds"]:8.2f} {res["cpu_seconds"]:8.2f} {res["peak_mb"]:8.1f} '
                              f'{speed:7.2f} {cpu_speed:7.2f} {mem:7.2f} {delta:9.2e}', flush=True)


if __name__ == '__main__':
    main()
