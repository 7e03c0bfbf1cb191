"""Forward time and peak memory of the low-light two-stage network on CPU: the padded inference path vs the plain way.

Usage::

    python benchmarks/bench_lowlight.py [--models aps rgb] [--size 260x346] [--reps 1] [--init_dim 64]

The network (``LowLightEventDeblurNet``, full width ``init_dim=64``, random weights after ``init_weights``) runs
on a full DAVIS346 frame (events and APS 260×346; the RGB model's image at 3×, 780×1038), which it cannot take as
is (it needs multiples of 8×40). Two variants, each in a fresh subprocess:

- ``plain``: the way a script without the framework does it: pad every input by hand (reflect, bottom/right, the
  RGB image by 3× the amount), run the network eagerly under ``torch.no_grad()``, crop the outputs back;
- ``padded``: the framework's test path, :func:`basicsr.models.inference.forward_padded` (same padding, under
  ``torch.inference_mode()``).

Time is the best wall time of ``--reps`` forwards after a warm-up forward at 16×40 (one-off oneDNN costs). Peak
memory is the rise of the process's peak resident set size over the timed forwards (everything the forward
touches, including allocator slack); each case runs alone in its own process so the figure is not masked by an
earlier case. The printed max |Δ| compares every output (F, Bi_clean, S) of ``padded`` with ``plain``. Figures are
wall-clock on a possibly shared machine: compare the ratios within one run.

:func:`make_lowlight` follows the contract of ``benchmarks/bench_inference.py`` (network, inputs, size multiple).
"""
import argparse
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
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from basicsr.archs.lowlight_arch import LowLightEventDeblurNet  # noqa: E402
from basicsr.models.inference import forward_padded  # noqa: E402

VARIANTS = ('plain', 'padded')
MODELS = ('aps', 'rgb')
WARM_SIZE = (16, 40)


def make_lowlight(height, width, seed=0, rgb=False, init_dim=64):
    """Full-width low-light network (random weights) with a voxel grid, a blurry APS frame and, for RGB, the 3× image.

    Args:
        height (int): Event / APS frame height.
        width (int): Event / APS frame width.
        seed (int): Seed of weights and inputs. Default: 0.
        rgb (bool): Hybrid RGB model (``Bi`` at 3× the frame size). Default: False.
        init_dim (int): Network width. Default: 64 (the released models).

    Returns:
        tuple[nn.Module, dict[str, Tensor], tuple[int, int]]: Network in eval mode, inputs for ``net(**inputs)``
        and the size multiple it needs.
    """
    torch.manual_seed(seed)
    net = LowLightEventDeblurNet(init_dim=init_dim, rgb=rgb)
    net.init_weights()
    net.eval()
    gen = torch.Generator().manual_seed(seed + 1)
    events = torch.randn(1, 13, height, width, generator=gen)
    events = events * (torch.rand(1, 13, height, width, generator=gen) < 0.3)
    aps = torch.rand(1, 1, height, width, generator=gen) * 0.3
    image = torch.rand(1, 3, 3 * height, 3 * width, generator=gen) * 0.3 if rgb else aps
    return net, {'E': events, 'B': aps, 'Bi': image}, net.size_multiple


def plain_forward(net, inputs, multiple):
    """Pads the inputs by hand, runs the network under ``torch.no_grad()`` and crops the outputs back.

    Args:
        net (LowLightEventDeblurNet): The network.
        inputs (dict[str, Tensor]): ``E``, ``B``, ``Bi`` (``Bi`` at 1× or 3× the size of ``E``).
        multiple (tuple[int, int]): Size multiple of the event frame.

    Returns:
        list[Tensor]: ``F``, ``Bi_clean``, ``S`` at the input sizes.
    """
    h, w = inputs['E'].shape[-2:]
    pad_h, pad_w = (-h) % multiple[0], (-w) % multiple[1]
    with torch.no_grad():
        padded = {}
        for key, tensor in inputs.items():
            k = tensor.shape[-2] // h
            padded[key] = F.pad(tensor, (0, k * pad_w, 0, k * pad_h), mode='reflect')
        outputs = net(**padded)
        return [out[..., :out.shape[-2] * h // (h + pad_h), :out.shape[-1] * w // (w + pad_w)] for out in outputs]


def run_case(model, height, width, variant, reps, init_dim, out_path):
    """Runs one case in the current process (the worker of a subprocess) and returns its measurements.

    Args:
        model (str): ``'aps'`` or ``'rgb'``.
        height (int): Event / APS frame height.
        width (int): Event / APS frame width.
        variant (str): One of :data:`VARIANTS`.
        reps (int): Timed forwards.
        init_dim (int): Network width.
        out_path (str): ``.npz`` file receiving the outputs for the comparison.

    Returns:
        dict: ``seconds`` (best), ``all_seconds``, ``peak_mb`` (rise of peak RSS), ``shapes``.
    """
    net, inputs, multiple = make_lowlight(height, width, rgb=model == 'rgb', init_dim=init_dim)
    _, warm, _ = make_lowlight(*WARM_SIZE, rgb=model == 'rgb', init_dim=init_dim)

    def forward(frame_inputs):
        if variant == 'plain':
            return plain_forward(net, frame_inputs, multiple)
        return forward_padded(net, frame_inputs, multiple, inference=True)

    forward(warm)
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        outputs = forward(inputs)
        times.append(time.perf_counter() - start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    arrays = {name: out.contiguous().numpy() for name, out in zip(('F', 'Bi_clean', 'S'), outputs)}
    tmp = f'{out_path}.tmp.npz'
    np.savez(tmp, **arrays)
    os.replace(tmp, out_path)
    return {'seconds': min(times), 'all_seconds': times, 'peak_mb': (peak_kb - base_kb) / 1024,
            'shapes': {k: list(v.shape) for k, v in arrays.items()}}


def _spawn(case, workdir):
    out_path = os.path.join(workdir, f'{case["model"]}_{case["variant"]}.npz')
    cmd = [sys.executable, __file__, '--worker', json.dumps(dict(case, out_path=out_path))]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f'case {case} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1]), out_path


def _parse_size(text):
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'size must look like 260x346, got {text!r}') from err
    return h, w


def main():
    """Parses the command line and runs every case (or one case with ``--worker``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument('--size', type=_parse_size, default=(260, 346), help='event / APS frame size HxW')
    parser.add_argument('--reps', type=int, default=1, help='timed forwards per case')
    parser.add_argument('--init_dim', type=int, default=64, help='network width (64 = released models)')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_case(**json.loads(args.worker))))
        return

    height, width = args.size
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, init_dim {args.init_dim}; '
          'peak = rise of peak RSS in a fresh process')
    print(f'{"model":6s} {"image":>10s} {"variant":8s} {"time s":>9s} {"peak MB":>9s} {"plain/this":>10s} '
          f'{"mem ratio":>9s} {"max|Δ| F":>9s} {"Bi_clean":>9s} {"S":>9s}')
    with tempfile.TemporaryDirectory(prefix='bench_lowlight_') as workdir:
        for model in args.models:
            k = 3 if model == 'rgb' else 1
            plain, plain_out = None, None
            for variant in VARIANTS:
                case = {'model': model, 'height': height, 'width': width, 'variant': variant, 'reps': args.reps,
                        'init_dim': args.init_dim}
                res, out_path = _spawn(case, workdir)
                out = dict(np.load(out_path))
                if plain is None:
                    plain, plain_out = res, out
                deltas = [float(np.abs(out[n] - plain_out[n]).max()) for n in ('F', 'Bi_clean', 'S')]
                mem = res['peak_mb'] / plain['peak_mb'] if plain['peak_mb'] > 0 else float('nan')
                print(f'{model:6s} {f"{k * height}x{k * width}":>10s} {variant:8s} {res["seconds"]:9.2f} '
                      f'{res["peak_mb"]:9.0f} {plain["seconds"] / res["seconds"]:10.2f} {mem:9.2f} '
                      + ' '.join(f'{d:9.1e}' for d in deltas), flush=True)


if __name__ == '__main__':
    main()
