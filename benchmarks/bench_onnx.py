"""Forward time of the restoration networks on CPU: torch fp32, torch bf16 autocast and ONNX Runtime side by side.

Usage::

    python benchmarks/bench_onnx.py [--cases efnet:256x256 efnet:260x346 lowlight_aps:260x346] [--reps 3]
                                    [--threads 2] [--bf16 auto|on|off]

Full-size networks with seeded random weights, as in ``benchmarks/bench_inference.py`` (EFNet wf=64; the low-light
network init_dim 64 after ``init_weights``), on seeded random inputs. For every case the network is exported with
:func:`basicsr.deploy.onnx_export.export_network` (its check included; the export time is printed) and then timed
through ``forward_padded`` (pad to the size multiple, forward, crop) as ``basicsr/infer.py`` runs it:

- ``torch fp32``: the project's fast path (``torch.inference_mode()``, channels-last where the network prefers it);
- ``torch bf16``: the same under ``torch.autocast('cpu', torch.bfloat16)``, only when the CPU has native bf16
  (oneDNN reports it; ``--bf16 on`` forces an emulated run);
- ``onnxruntime``: :class:`basicsr.deploy.onnx_runtime.OnnxNetwork` (CPU provider, ``--threads`` intra-op threads).

Time: best of ``--reps`` forwards after one warm-up forward at the same size, as wall time and as process CPU time
(torch and ONNX Runtime both use ``--threads`` threads). ``x fp32`` is the torch fp32 time over the variant's time
(above 1 = faster), for wall and CPU time; ``max|Δ|`` compares the variant's result with torch fp32. On a machine
shared with other work, CPU time is the steadier figure and absolute values vary; compare ratios within one run.
"""
import argparse
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_inference import NETWORKS  # noqa: E402

from basicsr.deploy.onnx_export import export_network  # noqa: E402
from basicsr.deploy.onnx_runtime import OnnxNetwork  # noqa: E402
from basicsr.models.inference import forward_padded  # noqa: E402

DEFAULT_CASES = ('efnet:256x256', 'efnet:260x346', 'lowlight_aps:260x346')
METHODS = {'efnet': 'EFNet', 'lowlight_aps': 'LowLightEventDeblurNet', 'lowlight_rgb': 'LowLightEventDeblurNet'}
OPTIONS = {'efnet': {'wf': 64}, 'lowlight_aps': {'init_dim': 64}, 'lowlight_rgb': {'init_dim': 64, 'rgb': True}}


def bf16_supported():
    """Whether the CPU runs bf16 natively (oneDNN's check).

    Returns:
        bool: True with native bf16 instructions (AVX512-BF16 / AMX).
    """
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def time_forward(forward, reps):
    """Best wall and CPU time of ``reps`` calls after one warm-up call.

    Args:
        forward (Callable[[], Tensor]): One forward.
        reps (int): Timed calls.

    Returns:
        tuple[float, float, Tensor]: Best wall seconds, best process CPU seconds, last output.
    """
    out = forward()
    walls, cpus = [], []
    for _ in range(reps):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = forward()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu_start)
    return min(walls), min(cpus), out


def run_case(net_name, height, width, reps, threads, bf16, workdir):
    """Measures one network at one size.

    Args:
        net_name (str): Key of ``bench_inference.NETWORKS``.
        height (int): Frame height.
        width (int): Frame width.
        reps (int): Timed forwards per variant.
        threads (int): Threads of torch and ONNX Runtime.
        bf16 (bool): Include the bf16 autocast variant.
        workdir (str): Folder of the exported file.

    Returns:
        tuple[float, list[tuple[str, float, float, float]]]: Export seconds, and per variant ``(name, wall s,
        cpu s, max |Δ| to torch fp32)``.
    """
    net, inputs, multiple = NETWORKS[net_name](height, width)
    result_index = net.io['outputs'].index(net.io['result'])
    path = os.path.join(workdir, f'{net_name}_{height}x{width}.onnx')
    start = time.perf_counter()
    export_network(net, METHODS[net_name], OPTIONS[net_name], (height, width), path, num_threads=threads,
                   overwrite=True)
    export_seconds = time.perf_counter() - start
    onnx_net = OnnxNetwork(path, num_threads=threads)

    def torch_forward(autocast):
        def forward():
            context = torch.autocast('cpu', dtype=torch.bfloat16) if autocast else nullcontext()
            with context:
                return forward_padded(net, inputs, multiple)[result_index].float()
        return forward

    variants = [('torch fp32', torch_forward(False))]
    if bf16:
        variants.append(('torch bf16', torch_forward(True)))
    variants.append(('onnxruntime', lambda: forward_padded(onnx_net, inputs, onnx_net.size_multiple)[0]))
    rows, reference = [], None
    for name, forward in variants:
        wall, cpu, out = time_forward(forward, reps)
        reference = out if reference is None else reference
        rows.append((name, wall, cpu, float((out - reference).abs().max())))
    return export_seconds, rows


def main():
    """Parses the command line and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cases', nargs='+', default=list(DEFAULT_CASES),
                        help=f'network:HxW with network one of {sorted(NETWORKS)}')
    parser.add_argument('--reps', type=int, default=3, help='timed forwards per variant (best is kept)')
    parser.add_argument('--threads', type=int, default=2, help='threads of torch and ONNX Runtime')
    parser.add_argument('--bf16', choices=('auto', 'on', 'off'), default='auto',
                        help='bf16 autocast variant: auto = when the CPU has native bf16')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bf16 = args.bf16 == 'on' or (args.bf16 == 'auto' and bf16_supported())
    native = 'with' if bf16_supported() else 'without'
    print(f'torch {torch.__version__}, {args.threads} threads, best of {args.reps}; CPU {native} native bf16'
          + ('' if bf16 else ' (bf16 variant skipped)'))
    print(f'{"case":22s} {"variant":12s} {"wall s":>8s} {"cpu s":>8s} {"wall x fp32":>11s} {"cpu x fp32":>10s} '
          f'{"max|Δ|":>9s}')
    with tempfile.TemporaryDirectory(prefix='bench_onnx_') as workdir:
        for case in args.cases:
            net_name, _, size = case.partition(':')
            height, width = (int(v) for v in size.lower().split('x'))
            export_seconds, rows = run_case(net_name, height, width, args.reps, args.threads, bf16, workdir)
            fp32 = rows[0]
            label = f'{net_name} {height}x{width}'
            for name, wall, cpu, delta in rows:
                print(f'{label:22s} {name:12s} {wall:8.3f} {cpu:8.3f} {fp32[1] / wall:11.2f} {fp32[2] / cpu:10.2f} '
                      f'{delta:9.2e}', flush=True)
            print(f'{label:22s} export + check {export_seconds:.1f} s', flush=True)


if __name__ == '__main__':
    main()
