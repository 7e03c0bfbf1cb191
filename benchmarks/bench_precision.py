"""Forward time and peak memory of the project's networks in fp32 and bf16, side by side with the original code.

Usage::

    python benchmarks/bench_precision.py [--original-root DIR] [--cases efnet_256 efnet_720p lowlight_aps]
                                         [--reps 3] [--bf16 auto|on|off]

Cases (full-size networks, seeded random weights, seeded random inputs as in ``benchmarks/bench_inference.py``):

- ``efnet_256``: EFNet (wf=64) at 256×256, whole frame: original, project fp32, project bf16;
- ``efnet_720p``: EFNet at 720×1280: the original on the whole frame, the project fp32 and bf16 on 256×256 tiles
  (``forward_tiled``);
- ``lowlight_aps``: the low-light network (init_dim 64, APS) at 256×320, whole frame: original, project fp32,
  project bf16. Its attention scales ``gamma`` start at 0 (the attention would be skipped); they are set to 0.3 so
  the attention's numerics count.

The weights are made once by the project's classes and saved; every case loads the same file, the original
networks with ``load_state_dict(strict=True)`` (the state dicts are key-compatible). Rows:

- ``original``: the original code (``--original-root``: ``EFNet/`` and ``Deblurring-Low-Light-Images-with-Events/``
  below it; default the ``BASICSR_ORIGINALS`` environment variable, else ``originals/`` beside the repository),
  called eagerly under ``torch.no_grad()`` as its test scripts do. When the folder is absent these rows are skipped
  with a note and the ratios are not printed;
- ``fp32``: the project's fast path as ``basicsr/infer.py`` runs it (``forward_padded`` / ``forward_tiled``:
  ``torch.inference_mode()``, channels-last where the network prefers it);
- ``bf16``: the same through :func:`basicsr.utils.precision.autocast_forward` (bf16 autocast, the networks'
  float32 islands, fp32 outputs). Run only when the CPU has native bf16 (``precision_support``) unless
  ``--bf16 on`` (then emulated: the time says nothing about speed, only the quality figure counts; on an AVX2-only
  CPU the emulated low-light forward alone took over 9 minutes).

The original code imports packages the project does not depend on: EFNet's ``arch_util.py`` imports ``einops``
(``rearrange``, used in the forward), ``timm`` (names never used at inference) and its own ``basicsr.utils``; the
low-light ``networks.py`` imports ``torchvision`` and builds a pretrained VGG19 at import time (for its perceptual
loss only, with ``.cuda()``). The benchmark writes small stand-ins for these into its temporary folder at run time
(``einops.rearrange`` for the plain reshape/transpose patterns EFNet uses, placeholders for the rest) and loads the
original EFNet's architecture files without its package ``__init__`` files (which import its training framework).
Nothing is downloaded or installed.

Every case runs in a fresh subprocess: a warm-up forward at the same size (a 256×256 crop for frames above 0.5
megapixel, where the timed forward is also only one) takes the one-off costs; then the best of ``--reps`` forwards as
wall time and as process CPU time, and the memory as the rise of the process's peak resident set size over the timed
forwards (``rise MB``, see ``bench_inference.py``; a tiled run's warm-up already held one tile, so its rise is small)
and as the process's whole peak (``RSS MB``: interpreter, torch, weights, inputs and forwards). ``x orig`` is the
original's time over the row's time (above 1 = faster), for wall and CPU time; ``max|Δ| orig`` compares the final output
(EFNet ``out_2``, low-light ``S``) with the original's (tiles differ from a whole frame by design: EFNet's channel
attention pools over the whole input); ``PSNR fp32`` is the bf16 output against the project fp32 output (peak 1, the
image range). Absolute figures depend on what else the machine is doing; compare ratios within one run.
"""
import argparse
import importlib
import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
ORIGINAL_DIRS = {'efnet': 'EFNet', 'lowlight_aps': 'Deblurring-Low-Light-Images-with-Events'}
# name: (network, height, width, [(implementation, precision, mode)])
CASES = {
    'efnet_256': ('efnet', 256, 256, [('original', 'fp32', 'whole'), ('project', 'fp32', 'whole'),
                                      ('project', 'bf16', 'whole')]),
    'efnet_720p': ('efnet', 720, 1280, [('original', 'fp32', 'whole'), ('project', 'fp32', 'tiled'),
                                        ('project', 'bf16', 'tiled')]),
    'lowlight_aps': ('lowlight_aps', 256, 320, [('original', 'fp32', 'whole'), ('project', 'fp32', 'whole'),
                                                ('project', 'bf16', 'whole')]),
}
CROP = 256
LARGE = 500_000  # pixels above which the warm-up is a crop and the timed forward is one

_EINOPS = '''"""Stand-in for einops.rearrange (written by benchmarks/bench_precision.py): axis names and parenthesised
groups, e.g. 'b (head c) h w -> b head c (h w)'; a reshape, a permute and a reshape, as einops does."""
import math


def _groups(side):
    groups, current = [], None
    for token in side.replace('(', ' ( ').replace(')', ' ) ').split():
        if token == '(':
            current = []
        elif token == ')':
            groups.append(current)
            current = None
        elif current is not None:
            current.append(token)
        else:
            groups.append([token])
    return groups


def rearrange(tensor, pattern, **sizes):
    left, right = (_groups(side) for side in pattern.split('->'))
    known = dict(sizes)
    for group, length in zip(left, tensor.shape):
        missing = [name for name in group if name not in known]
        if missing:
            known[missing[0]] = length // math.prod(known[name] for name in group if name in known)
    names = [name for group in left for name in group]
    out_names = [name for group in right for name in group]
    flat = tensor.reshape([known[name] for name in names]).permute([names.index(name) for name in out_names])
    return flat.reshape([math.prod(known[name] for name in group) for group in right])
'''
_PLACEHOLDER = '''"""Stand-in written by benchmarks/bench_precision.py: names the original code imports but never
uses at inference (timm layers; torchvision's VGG19, built at import for a perceptual loss). Any use returns the
placeholder itself, so ``models.vgg19(pretrained=True).features[0:15].cuda()`` does nothing."""


class _Placeholder:
    def __getattr__(self, name):
        return self

    def __getitem__(self, item):
        return self

    def __call__(self, *args, **kwargs):
        return self


models = DropPath = trunc_normal_ = to_2tuple = _Placeholder()
'''
SHIMS = {'einops/__init__.py': _EINOPS, 'timm/__init__.py': '', 'timm/models/__init__.py': '',
         'timm/models/layers.py': _PLACEHOLDER, 'torchvision/__init__.py': _PLACEHOLDER}


def default_original_root():
    """Where the original code is looked for when ``--original-root`` is not given.

    Returns:
        Path: ``$BASICSR_ORIGINALS``, else ``originals/`` beside the repository.
    """
    return Path(os.environ.get('BASICSR_ORIGINALS') or REPO.parent / 'originals')


def write_shims(folder):
    """Writes the stand-ins for einops, timm and torchvision (see the module docstring) below ``folder``.

    Args:
        folder (Path): An empty temporary folder.

    Returns:
        Path: ``folder``, to put first on ``sys.path``.
    """
    for name, text in SHIMS.items():
        path = Path(folder) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding='utf-8')
    return Path(folder)


def original_network(net_name, root, shim_dir):
    """Builds the original network (in a worker process that never imports the project's ``basicsr``).

    Args:
        net_name (str): ``'efnet'`` or ``'lowlight_aps'``.
        root (Path): Folder holding the original repositories.
        shim_dir (Path): Folder from :func:`write_shims`.

    Returns:
        nn.Module: The original network with its default (full-size) options.
    """
    sys.path.insert(0, str(shim_dir))
    code = Path(root) / ORIGINAL_DIRS[net_name]
    if net_name == 'efnet':
        # The architecture files only; the package __init__ files import the original training framework.
        for package in ('basicsr', 'basicsr.models', 'basicsr.models.archs'):
            module = types.ModuleType(package)
            module.__path__ = [str(code.joinpath(*package.split('.')))]
            sys.modules[package] = module
        utils = types.ModuleType('basicsr.utils')
        utils.get_root_logger = logging.getLogger
        sys.modules['basicsr.utils'] = utils
        return importlib.import_module('basicsr.models.archs.EFNet_arch').EFNet()
    sys.path.insert(0, str(code))
    return importlib.import_module('model.model_full').DefaultModel()


def _project_forward(net, multiple, precision, mode):
    sys.path.insert(0, str(REPO))
    from basicsr.models.inference import forward_padded, forward_tiled
    from basicsr.utils.precision import DTYPES, autocast_forward
    model = autocast_forward(net, DTYPES[precision], 'cpu')
    if mode == 'tiled':
        return lambda inputs: forward_tiled(model, inputs, CROP, multiple)[-1]
    return lambda inputs: forward_padded(model, inputs, multiple)[-1]


def _original_forward(net):
    def forward(inputs):
        with torch.no_grad():
            return net(*[t for t in inputs.values()])[-1]
    return forward


def run_case(net_name, implementation, precision, mode, reps, workdir, original_root, out_path):
    """Runs one row in the current process (the worker of a subprocess).

    Args:
        net_name (str): ``'efnet'`` or ``'lowlight_aps'``.
        implementation (str): ``'original'`` or ``'project'``.
        precision (str): ``'fp32'`` or ``'bf16'``.
        mode (str): ``'whole'`` or ``'tiled'``.
        reps (int): Timed forwards.
        workdir (str): Folder with the weights, the inputs and the shims.
        original_root (str): Folder of the original code.
        out_path (str): Where the final output is saved (``.npy``).

    Returns:
        dict: ``seconds`` and ``cpu_seconds`` (best), ``peak_mb`` (rise of peak RSS over the timed forwards),
        ``rss_mb`` (peak RSS of the whole process: interpreter, torch, weights, inputs, forwards).
    """
    workdir = Path(workdir)
    state = torch.load(workdir / f'{net_name}_weights.pth', weights_only=True)
    saved = torch.load(workdir / f'{net_name}_inputs.pth', weights_only=True)
    inputs, multiple = saved['inputs'], tuple(saved['multiple'])
    if implementation == 'original':
        net = original_network(net_name, original_root, workdir / 'shims')
        forward = _original_forward(net)
    else:
        sys.path.insert(0, str(REPO))
        from bench_inference import NETWORKS
        net = NETWORKS[net_name](8 * multiple[0], 8 * multiple[1])[0]
        forward = _project_forward(net, multiple, precision, mode)
    net.load_state_dict(state, strict=True)
    net.eval()
    height, width = next(iter(inputs.values())).shape[-2:]
    warm = inputs
    if height * width > LARGE:
        warm = {k: v[..., :CROP * v.shape[-2] // height, :CROP * v.shape[-1] // width] for k, v in inputs.items()}
    forward(warm)
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    walls, cpus = [], []
    for _ in range(reps):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = forward(inputs)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu_start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tmp = f'{out_path}.tmp.npy'
    np.save(tmp, out.float().contiguous().numpy())
    os.replace(tmp, out_path)
    return {'seconds': min(walls), 'cpu_seconds': min(cpus), 'peak_mb': (peak_kb - base_kb) / 1024,
            'rss_mb': peak_kb / 1024}


def prepare(net_name, height, width, workdir):
    """Makes the seeded project network and inputs (``bench_inference.NETWORKS``) and saves weights and inputs.

    Args:
        net_name (str): ``'efnet'`` or ``'lowlight_aps'``.
        height (int): Frame height.
        width (int): Frame width.
        workdir (Path): Where ``<net>_weights.pth`` and ``<net>_inputs.pth`` go.
    """
    from bench_inference import NETWORKS
    net, inputs, multiple = NETWORKS[net_name](height, width)
    multiple = multiple if isinstance(multiple, tuple) else (multiple, multiple)
    for module in net.modules():
        if isinstance(getattr(module, 'gamma', None), torch.nn.Parameter):
            module.gamma.data.fill_(0.3)
    torch.save(net.state_dict(), workdir / f'{net_name}_weights.pth')
    torch.save({'inputs': inputs, 'multiple': list(multiple)}, workdir / f'{net_name}_inputs.pth')


def _spawn(case, workdir):
    cmd = [sys.executable, __file__, '--worker', json.dumps(case)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=workdir)
    if proc.returncode:
        raise RuntimeError(f'case {case} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _psnr(out, ref):
    mse = float(np.mean((out.astype(np.float64) - ref) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def main():
    """Parses the command line and runs every case (or, with ``--worker``, one row)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--original-root', type=Path, default=default_original_root(),
                        help='folder holding EFNet/ and Deblurring-Low-Light-Images-with-Events/ '
                             '(default: $BASICSR_ORIGINALS, else ../originals beside the repository)')
    parser.add_argument('--cases', nargs='+', default=list(CASES), choices=list(CASES))
    parser.add_argument('--reps', type=int, default=3, help='timed forwards per row (1 above 0.5 megapixel)')
    parser.add_argument('--bf16', choices=('auto', 'on', 'off'), default='auto',
                        help='bf16 rows: auto = when the CPU has native bf16; on = also emulated (quality only)')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_case(**json.loads(args.worker))))
        return

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from basicsr.utils.precision import precision_support
    native, reason = precision_support('bf16', 'cpu')
    bf16 = args.bf16 == 'on' or (args.bf16 == 'auto' and native)
    bf16_note = ('' if bf16 else ' (bf16 rows skipped: not measured)') + (
        ' (bf16 rows emulated: their times say nothing about speed)' if bf16 and not native else '')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.reps}; bf16: '
          f'{"native" if native else "no"} ({reason}){bf16_note}')
    print(f'{"case":22s} {"row":18s} {"wall s":>8s} {"cpu s":>8s} {"rise MB":>8s} {"RSS MB":>7s} {"wall x orig":>11s} '
          f'{"cpu x orig":>10s} {"max|Δ| orig":>11s} {"PSNR fp32":>9s}', flush=True)
    with tempfile.TemporaryDirectory(prefix='bench_precision_') as tmp:
        workdir = Path(tmp)
        write_shims(workdir / 'shims')
        has_original = {net: (args.original_root / folder).is_dir() for net, folder in ORIGINAL_DIRS.items()}
        for case_name in args.cases:
            net_name, height, width, rows = CASES[case_name]
            prepare(net_name, height, width, workdir)
            label = f'{net_name} {height}x{width}'
            outputs, results = {}, {}
            for implementation, precision, mode in rows:
                row = f'{implementation} {precision} {mode}' if implementation == 'project' else f'original {mode}'
                if implementation == 'original' and not has_original[net_name]:
                    print(f'{label:22s} {row:18s} skipped: no original code at '
                          f'{args.original_root / ORIGINAL_DIRS[net_name]} (--original-root / BASICSR_ORIGINALS)')
                    continue
                if precision == 'bf16' and not bf16:
                    print(f'{label:22s} {row:18s} not measured: no native bf16 on this CPU ({reason})')
                    continue
                out_path = str(workdir / f'{case_name}_{implementation}_{precision}.npy')
                reps = 1 if height * width > LARGE else args.reps
                case = {'net_name': net_name, 'implementation': implementation, 'precision': precision,
                        'mode': mode, 'reps': reps, 'workdir': str(workdir),
                        'original_root': str(args.original_root), 'out_path': out_path}
                res = results[implementation, precision] = _spawn(case, workdir)
                out = outputs[implementation, precision] = np.load(out_path)
                orig, ref = results.get(('original', 'fp32')), outputs.get(('project', 'fp32'))
                ratios = (f'{orig["seconds"] / res["seconds"]:11.2f} {orig["cpu_seconds"] / res["cpu_seconds"]:10.2f} '
                          f'{np.abs(out - outputs["original", "fp32"]).max():11.2e}' if orig else
                          f'{"–":>11s} {"–":>10s} {"–":>11s}')
                psnr = f'{_psnr(out, ref):9.2f}' if precision == 'bf16' and ref is not None else f'{"–":>9s}'
                print(f'{label:22s} {row:18s} {res["seconds"]:8.2f} {res["cpu_seconds"]:8.2f} '
                      f'{res["peak_mb"]:8.1f} {res["rss_mb"]:7.0f} {ratios} {psnr}', flush=True)


if __name__ == '__main__':
    main()
