"""Validation and testing sharded over all ranks, with per-image metrics gathered on rank 0.

Nothing here knows a particular network: what a network wants said or recorded, it declares (see
:mod:`basicsr.archs.method_spec`): a notice about the metric options (``metrics_notice``), a line per dataset
(``dataset_notice``), a record of what it decided per image (``last_records``, e.g. EDI's threshold, collected into
``model.decision_records``), and whether it is the identity by design (``returns_input``).
"""
import os
import os.path as osp
from collections import Counter, OrderedDict

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from basicsr.metrics import calculate_metric
from basicsr.utils.dist_util import all_gather_objects, get_dist_info
from basicsr.events import representation_strip
from basicsr.utils.img_util import imwrite, make_panel, tensor2img


def image_name(data, index):
    """Returns the name of a batch-of-one sample: ``image_name``, else the stem of ``lq_path``, else the index.

    Args:
        data (dict): Collated batch of size 1.
        index (int): Index of the sample in its dataset.

    Returns:
        str: Name (may contain ``/`` for sequence data, e.g. ``seq/0001``).
    """
    for key in ('image_name', 'name'):
        if key in data:
            value = data[key]
            return str(value[0] if isinstance(value, (list, tuple)) else value)
    if 'lq_path' in data:
        return osp.splitext(osp.basename(data['lq_path'][0]))[0]
    return f'{index:06d}'


def _as_hwc(img):
    return img[..., None] if img.ndim == 2 else img


def metric_options(metrics_opt, device, net, logger, notice=True):
    """Prepares the metric options of a run: the 3-D SSIM runs on the model's GPU; the network's own notice about
    the metrics (its ``metrics_notice``, e.g. EFNet's on the 3-D SSIM of its papers) is logged.

    Args:
        metrics_opt (dict): ``val.metrics``.
        device (torch.device): The model's device.
        net (torch.nn.Module | type): The bare network (or its class).
        logger (logging.Logger): Logger for the notice.
        notice (bool): Log the network's notice (once per model is enough). Default: True.

    Returns:
        dict: Metric options (a copy when changed).
    """
    types = {m.get('type') for m in metrics_opt.values()}
    metrics_notice = getattr(net, 'metrics_notice', None)
    message = metrics_notice(types) if notice and metrics_notice is not None else ''
    if message:
        logger.info(message)
    if device.type != 'cuda':
        return metrics_opt
    return {name: ({**mopt, 'device': device} if mopt.get('type') == 'calculate_ssim_3d' and 'device' not in mopt
                   else mopt) for name, mopt in metrics_opt.items()}


def _score(visuals, metrics_opt, use_image, rgb2bgr):
    """Metric values of one image, on uint8 images (``use_image``) or on float [0, 1] arrays."""
    if use_image:
        out = _as_hwc(tensor2img(visuals['result'], rgb2bgr=rgb2bgr))
        gt = _as_hwc(tensor2img(visuals['gt'], rgb2bgr=rgb2bgr))
    else:
        out = visuals['result'][0].clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64)
        gt = visuals['gt'][0].clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float64)
    return {name: float(calculate_metric({'img': out, 'img2': gt}, mopt)) for name, mopt in metrics_opt.items()}


def _check_result(model, net, visuals, name, decisions):
    """Logs what a user must know about one result: the network's record of it (e.g. EDI's threshold fallback),
    an output equal to its input."""
    last_records = getattr(net, 'last_records', None)
    records = last_records() if last_records is not None else None
    if records:
        decisions[name] = records[0]
        warning = records[0].warning(name)
        if warning:
            model.logger.warning(warning)
    lq = visuals.get('lq')
    if getattr(net, 'returns_input', False) or lq is None:  # the identity by design (the "blurry input" rows)
        return
    if lq.shape == visuals['result'].shape and torch.equal(lq, visuals['result']):
        model.logger.warning(f'{type(net).__name__} returned {name} unchanged (the output equals the input)')


def result_panel(visuals, rgb2bgr):
    """blurry | events | output | sharp of one sample (tiles that are missing are left out).

    Args:
        visuals (dict): ``lq``, ``events``, ``result``, ``gt`` tensors of a batch of one.
        rgb2bgr (bool): Convert RGB tensors to BGR for writing.

    Returns:
        np.ndarray: uint8 BGR panel.
    """
    tiles, labels = [], []
    for key, label in (('lq', 'blurry'), ('events', 'events'), ('result', 'output'), ('gt', 'sharp')):
        if key not in visuals:
            continue
        if key == 'events':
            activity = visuals['events'][0].numpy().mean(axis=0, keepdims=True)
            tiles.append(representation_strip(activity)[..., ::-1])
        else:
            tiles.append(tensor2img(visuals[key], rgb2bgr=rgb2bgr))
        labels.append(label)
    return make_panel(tiles, labels)


def _save_path(opt, dataset_name, name, current_iter):
    """Where a result image goes (framework.md §4)."""
    vis = opt['path']['visualization']
    if opt['is_train']:
        return osp.join(vis, name, f'{osp.basename(name)}_{current_iter}.png')
    suffix = (opt.get('val') or {}).get('suffix')
    return osp.join(vis, dataset_name, f'{name}_{suffix}.png' if suffix else f'{name}.png')


def run_validation(model, dataloader, current_iter, tb_logger=None, save_img=False):
    """Evaluates ``model`` on a dataset; every rank takes indices ``rank, rank + world, ...``.

    Per-image metric values are gathered on rank 0, which averages, logs, writes TensorBoard scalars
    (``metrics/<dataset>/<metric>``) and tracks the best value per dataset and metric (``better: higher|lower``).
    Metrics are skipped for samples without ground truth. With a TensorBoard writer, the panels (blurry | events |
    output | sharp) of the first ``val.tb_images`` samples (default 4) go to ``val/<dataset>/<image>``.

    Args:
        model (ImageEventRestorationModel): Model with ``feed_data``/``test``/``get_current_visuals``.
        dataloader (DataLoader): Loader whose dataset is evaluated; its workers and collate function are reused.
        current_iter (int | str): Iteration (training) or label (testing).
        tb_logger (SummaryWriter | None): TensorBoard writer. Default: None.
        save_img (bool): Save result images. Default: False.

    A network that records what it decided per image (``last_records``, e.g. EDI's contrast threshold) has each
    record's warning logged, the records summarised for the set and left in ``model.decision_records``
    (``OrderedDict`` name → record; empty for other networks).

    Returns:
        dict: ``{metric: mean}`` on rank 0 (empty on other ranks or without metrics). The per-image values are
        left in ``model.image_records`` (``OrderedDict`` name → {metric: value}).

    Raises:
        ValueError: On rank 0, when two samples share a name (their scores would collapse into one).
    """
    opt = model.opt
    val_opt = opt.get('val') or {}
    dataset = dataloader.dataset
    dataset_opt = getattr(dataset, 'opt', {}) or {}
    dataset_name = dataset_opt.get('name', 'dataset')
    use_mask = bool(dataset_opt.get('use_mask', False))
    net = model.get_bare_model(model.net_g)
    metrics_opt = metric_options(val_opt.get('metrics') or {}, model.device, net, model.logger,
                                 notice=not getattr(model, 'metrics_notice_given', False))
    model.metrics_notice_given = True
    rgb2bgr = val_opt.get('rgb2bgr', True)
    use_image = val_opt.get('use_image', True)
    rank, world = get_dist_info()
    tb_images = int(val_opt.get('tb_images', 4)) if tb_logger is not None else 0
    if getattr(net, 'dataset_notice', None) and rank == 0:
        model.logger.info(net.dataset_notice.format(dataset=dataset_name))

    indices = list(range(rank, len(dataset), world))
    loader = DataLoader(Subset(dataset, indices), batch_size=1, shuffle=False, num_workers=dataloader.num_workers,
                        collate_fn=dataloader.collate_fn, worker_init_fn=dataloader.worker_init_fn)
    pbar = tqdm(total=len(dataset), unit='image', desc=f'{dataset_name}', disable=rank != 0
                or not val_opt.get('pbar', True), dynamic_ncols=True)
    records, decisions = [], OrderedDict()
    for index, data in zip(indices, loader):
        model.feed_data(data, use_mask=use_mask)
        model.test()
        visuals = model.get_current_visuals()
        name = image_name(data, index)
        _check_result(model, net, visuals, name, decisions)
        if save_img:
            save_path = _save_path(opt, dataset_name, name, current_iter)
            imwrite(tensor2img(visuals['result'], rgb2bgr=rgb2bgr), save_path)
            if val_opt.get('save_panels'):
                imwrite(result_panel(visuals, rgb2bgr), save_path[:-len('.png')] + '_panel.png')
        if len(records) < tb_images:
            panel = np.ascontiguousarray(result_panel(visuals, rgb2bgr)[..., ::-1])  # TensorBoard takes RGB
            tb_logger.add_image(f'val/{dataset_name}/{name}', panel, current_iter, dataformats='HWC')
        records.append((name, _score(visuals, metrics_opt, use_image, rgb2bgr) if 'gt' in visuals else {}))
        pbar.update(world)
        pbar.set_postfix_str(name)
    pbar.close()

    gathered, merged_decisions = [], OrderedDict()
    for part, part_decisions in all_gather_objects((records, decisions)):
        gathered.extend(part)
        merged_decisions.update(part_decisions)
    merged = OrderedDict(sorted(gathered, key=lambda item: item[0]))
    model.image_records = merged
    model.decision_records = OrderedDict(sorted(merged_decisions.items()))
    if rank != 0:
        return {}
    if len(merged) != len(gathered):
        repeated = sorted(n for n, count in Counter(name for name, _ in gathered).items() if count > 1)
        raise ValueError(f'dataset {dataset_name!r}: {len(gathered) - len(merged)} samples share a name with another '
                         f'({repeated[:5]}), so their scores and images would collapse; the dataset must give each '
                         'sample a distinct image_name')
    if model.decision_records:
        kind = type(next(iter(model.decision_records.values())))
        model.logger.info(f'{kind.title} on {dataset_name}: {kind.summarize(list(model.decision_records.values()))}')
    means = {}
    for metric in metrics_opt:
        values = [rec[metric] for rec in merged.values() if metric in rec]
        if values:
            means[metric] = float(np.mean(values))
    _log_means(model, dataset_name, means, metrics_opt, current_iter, tb_logger)
    return means


def _log_means(model, dataset_name, means, metrics_opt, current_iter, tb_logger):
    """Logs the mean values and updates the best value per metric."""
    best = getattr(model, 'best_metric_results', None)
    if best is None:
        best = model.best_metric_results = {}
    dataset_best = best.setdefault(dataset_name, {})
    msg = f'Validation {dataset_name}'
    if not means:
        msg += ' (no ground truth: images only)' if metrics_opt else ' (no metrics configured)'
    for metric, value in means.items():
        better = metrics_opt[metric].get('better', 'higher')
        entry = dataset_best.setdefault(metric, {'better': better, 'val': None, 'iter': None})
        improved = entry['val'] is None or (value > entry['val'] if better == 'higher' else value < entry['val'])
        if improved:
            entry.update(val=value, iter=current_iter)
        msg += f'\n\t # {metric}: {value:.4f}'
        if model.is_train:
            msg += f'\tBest: {entry["val"]:.4f} @ {entry["iter"]} iter'
        if tb_logger is not None:
            tb_logger.add_scalar(f'metrics/{dataset_name}/{metric}', value, current_iter)
    model.logger.info(msg)


def write_metrics_csv(records, path):
    """Writes per-image metric values and their mean to a CSV file (atomically).

    Args:
        records (dict): Image name → {metric: value}.
        path (str): Output ``.csv`` path.
    """
    metrics = sorted({m for rec in records.values() for m in rec})
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(','.join(['image'] + metrics) + '\n')
        for name, rec in records.items():
            f.write(','.join([name] + [f'{rec[m]:.6f}' if m in rec else '' for m in metrics]) + '\n')
        if records:
            means = [np.mean([rec[m] for rec in records.values() if m in rec]) for m in metrics]
            f.write(','.join(['mean'] + [f'{v:.6f}' for v in means]) + '\n')
    os.replace(tmp, path)
