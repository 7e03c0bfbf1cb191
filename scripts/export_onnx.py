"""Export a trained deblurring network to ONNX, checked against torch, for ONNX Runtime / OpenVINO / TensorRT.

The graph takes the network's inputs by batch key (EFNet: ``frame``, ``voxel``, ``mask``; low-light: ``E``, ``B``,
``Bi``) at the given frame size (the event sensor's, padded inside to the network's size multiple), with a dynamic
height and width where the network computes the same at another size, and returns the result output. The export is
checked right away (ONNX checker, ONNX Runtime against torch on random inputs) and refused, with no file written,
when they differ by more than 1e-4 of the output. The file records the method, its options, the event
representation it expects and the size (ONNX metadata). Needs ``pip install -e '.[deploy]'``.

Usage::

    python scripts/export_onnx.py --method EFNet --checkpoint net_g_latest.pth --size 260 346 --out efnet.onnx
    python scripts/export_onnx.py --method LowLightEventDeblurNet --rgb --checkpoint lowlight_rgb.pth \\
        --size 260 346 --out lowlight_rgb.onnx
"""
import argparse
import os
import sys

import yaml

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..')))

from basicsr.deploy.onnx_export import ExportError, export_method  # noqa: E402
from basicsr.models.base_model import CheckpointError  # noqa: E402

__all__ = ['main']


def _net_opt(items):
    opts = {}
    for item in items or []:
        key, sep, value = item.partition('=')
        if not sep:
            raise ExportError(f'--net-opt {item!r}: expected key=value (value in YAML, e.g. wf=64)')
        try:
            opts[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ExportError(f'--net-opt {item!r}: value is not valid YAML ({err})') from None
    return opts


def main(argv=None):
    """Command-line entry point.

    Args:
        argv (list[str] | None): Arguments (default: ``sys.argv[1:]``).

    Returns:
        int: Exit status (0 on success, 1 for a refused or impossible export).
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--method', required=True, help='EFNet or LowLightEventDeblurNet (EDI has no network)')
    parser.add_argument('--rgb', action='store_true', help='the RGB low-light model (image at 3x the sensor)')
    parser.add_argument('--checkpoint', help='trained weights (.pth)')
    parser.add_argument('--random-weights', action='store_true',
                        help='export seeded random weights instead of a checkpoint (testing only: deblurs nothing)')
    parser.add_argument('--size', nargs=2, type=int, required=True, metavar=('H', 'W'),
                        help='frame size at the event resolution (the sensor size, e.g. 260 346)')
    parser.add_argument('--out', required=True, help='.onnx file to write')
    parser.add_argument('--net-opt', nargs='*', metavar='KEY=VALUE', help='network options (the checkpoint fixes '
                        'the widths and channels)')
    parser.add_argument('--fixed-size', action='store_true', help='export for --size only (no dynamic H, W)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --out file')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='largest accepted ONNX Runtime - torch difference, relative to the largest output')
    parser.add_argument('--threads', type=int, default=None, help='ONNX Runtime threads of the check')
    args = parser.parse_args(argv)
    try:
        net_opt = _net_opt(args.net_opt)
        if args.rgb:
            net_opt['rgb'] = True
        print(f'exporting {args.method} at {args.size[0]}x{args.size[1]} to {args.out} and checking it ...', flush=True)
        result = export_method(args.method, tuple(args.size), args.out, checkpoint=args.checkpoint, net_opt=net_opt,
                               random_weights=args.random_weights, dynamic=not args.fixed_size,
                               overwrite=args.overwrite, num_threads=args.threads, tolerance=args.tolerance)
    except (ExportError, CheckpointError, ValueError, KeyError, ImportError) as err:
        print(f'error: {str(err).strip(chr(34) + chr(39))}', file=sys.stderr)
        return 1
    meta = result.metadata
    for check in result.checks:
        print(f'check     {check.size[0]}x{check.size[1]}: ONNX Runtime vs torch max |diff| {check.max_abs_diff:.3g} '
              f'({check.max_rel_diff:.3g} of the largest output)')
    print('checker   ONNX checker passed')
    print(f'size      {meta.size_text}' + ('' if meta.dynamic_size else ' (dynamic sizes gave other outputs)'))
    inputs = ', '.join(meta.io['inputs'].values())
    print(f'graph     inputs {inputs} -> {meta.io["result"]}; events {meta.events.event_repr}')
    print(f'wrote     {result.path} ({os.path.getsize(result.path) / 1e6:.1f} MB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
