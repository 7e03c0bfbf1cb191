# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/test.py (Apache-2.0)
"""Testing entry point: ``python basicsr/test.py -opt options/test/<Dataset>/<name>.yml``."""
import logging.handlers
import os.path as osp
import sys

if __package__ in (None, ''):  # run as a script: make the repository importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402

from basicsr.data import build_dataloader, build_dataset  # noqa: E402
from basicsr.models import build_model  # noqa: E402
from basicsr.models.base_model import CheckpointError  # noqa: E402
from basicsr.models.validation import write_metrics_csv  # noqa: E402
from basicsr.utils.logger import get_root_logger, log_run_header  # noqa: E402
from basicsr.utils.misc import get_time_str, make_exp_dirs  # noqa: E402
from basicsr.utils.options import dict2str, parse_options  # noqa: E402
from basicsr.utils.output_check import check_writable  # noqa: E402


def format_table(results):
    """Formats ``{dataset: {metric: mean}}`` as a fixed-width table.

    Args:
        results (dict): Mean metric values per dataset.

    Returns:
        str: The table (one row per dataset).
    """
    metrics = sorted({m for values in results.values() for m in values})
    width = max([len('dataset')] + [len(name) for name in results]) + 2
    lines = ['dataset'.ljust(width) + ''.join(m.rjust(14) for m in metrics)]
    for name, values in results.items():
        lines.append(name.ljust(width) + ''.join(
            (f'{values[m]:.4f}' if m in values else '-').rjust(14) for m in metrics))
    return '\n'.join(lines)


def test_pipeline(root_path, argv=None):
    """Evaluates every dataset of a test option file; writes images, a CSV per set and a summary table.

    A network that records what it decided per image writes the records to ``<results_root>/<set>_<file>`` as the
    record declares (EDI: ``<set>_thresholds.csv``, the contrast threshold of every image: given, per-frame
    estimate or fallback).

    Args:
        root_path (str): Repository root: default base of ``results/``.
        argv (list[str] | None): Command-line arguments instead of ``sys.argv[1:]``. Default: None.

    Returns:
        dict: ``{dataset name: {metric: mean}}`` (rank 0).
    """
    opt, _ = parse_options(root_path, is_train=False, argv=argv)
    torch.backends.cudnn.benchmark = True
    if opt['rank'] == 0:  # before any work: the results folder is made (or an earlier one archived) in its parent
        check_writable(osp.dirname(opt['path']['results_root']), 'the folder of path.results_root')
    logger = get_root_logger()
    # Datasets and network (with its checkpoint) are checked before the results folder is made, so a run that
    # cannot start leaves an earlier results folder where it was; their log lines wait for the log file.
    early = logging.handlers.MemoryHandler(capacity=10 ** 6, flushLevel=logging.CRITICAL + 1)
    logger.addHandler(early)
    try:
        loaders = []
        for _, dataset_opt in opt['datasets'].items():
            test_set = build_dataset(dataset_opt)
            loaders.append(build_dataloader(test_set, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'],
                                            sampler=None, seed=opt['manual_seed']))
            logger.info(f'Number of test images in {dataset_opt["name"]}: {len(test_set)}')
        model = build_model(opt)
    finally:
        logger.removeHandler(early)
    make_exp_dirs(opt)
    log_file = osp.join(opt['path']['log'], f'test_{opt["name"]}_{get_time_str()}.log')
    logger = get_root_logger(log_file=log_file if opt['rank'] == 0 else None)
    log_run_header(logger, dict2str(opt), log_file if opt['rank'] == 0 else None)
    early.setTarget(next((h for h in logger.handlers if isinstance(h, logging.FileHandler)), None))
    early.close()  # writes the lines logged above to the log file (rank 0), then drops them
    save_img = (opt.get('val') or {}).get('save_img', False)
    results = {}
    for loader in loaders:
        name = loader.dataset.opt['name']
        logger.info(f'Testing {name}...')
        results[name] = model.validation(loader, current_iter=opt['name'], tb_logger=None, save_img=save_img)
        if opt['rank'] == 0 and results[name]:
            csv_path = osp.join(opt['path']['results_root'], f'{name}_metrics.csv')
            write_metrics_csv(model.image_records, csv_path)
            logger.info(f'Per-image scores: {csv_path}')
        decisions = getattr(model, 'decision_records', None)
        if opt['rank'] == 0 and decisions:
            kind = type(next(iter(decisions.values())))
            csv_path = osp.join(opt['path']['results_root'], f'{name}_{kind.file_name}')
            kind.write_csv(csv_path, list(decisions), list(decisions.values()))
            logger.info(f'{kind.title} per image: {csv_path}')
    if opt['rank'] == 0:
        logger.info('Results (mean over each set):\n' + format_table(results))
        if save_img:
            logger.info(f'Images saved under {opt["path"]["visualization"]}')
    return results


def main():
    """Console entry: tests, and turns bad input (options, data files, checkpoints, an output folder that cannot be
    written: ``OSError``) into a one-line error and exit 1."""
    root_path = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), osp.pardir))
    try:
        test_pipeline(root_path)
    except (KeyError, ValueError, OSError, CheckpointError) as err:
        get_root_logger().error(f'Testing stopped: {type(err).__name__}: {err}')
        sys.exit(1)


if __name__ == '__main__':
    main()
