# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/data/paired_image_dataset.py (Apache-2.0)
"""Plain paired-image dataset (blurry/low-quality input and its ground truth) from folders or lmdb."""
import os

import torch
from torch.utils import data as data

from basicsr.data.sample_names import unique_names
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils.file_client import FileClient
from basicsr.utils.img_util import imfrombytes, img2tensor
from basicsr.utils.misc import scandir
from basicsr.utils.registry import DATASET_REGISTRY

__all__ = ['PairedImageDataset', 'paired_paths']


def _read_meta_keys(meta_file):
    with open(meta_file) as f:
        return [line.split()[0] for line in f if line.strip() and not line.startswith('#')]


def _check_folder(opt, key):
    if key not in opt:
        raise KeyError(f'dataset {opt.get("name")!r}: option "{key}" is required')
    path = os.path.expanduser(os.fspath(opt[key]))
    if not os.path.isdir(path):
        raise FileNotFoundError(f'dataset {opt.get("name")!r}: folder of option "{key}" not found: {path}')
    return path


def paired_paths(gt_folder, lq_folder, filename_tmpl='{}', meta_info_file=None, lmdb=False):
    """Lists matching (lq, gt) pairs.

    The lq name of a gt file ``<stem><ext>`` is ``filename_tmpl.format(stem) + ext``. For lmdb folders the keys
    come from each folder's ``meta_info.txt`` (first token per line, without extension).

    Args:
        gt_folder (str): Ground-truth folder (or lmdb folder).
        lq_folder (str): Input folder (or lmdb folder).
        filename_tmpl (str): Template from a gt stem to an lq stem. Default: ``'{}'``.
        meta_info_file (str | None): Text file whose first token per line is a gt path relative to
            ``gt_folder``. Default: None (scan the folder).
        lmdb (bool): The folders are lmdb databases. Default: False.

    Returns:
        list[dict]: ``{'lq_path', 'gt_path'}`` per pair (keys instead of paths for lmdb), sorted by gt name.

    Raises:
        FileNotFoundError: If gt stems have no lq file (or vice versa), naming up to 10 missing stems.
    """
    if lmdb:
        gt_keys = [os.path.splitext(k)[0] for k in _read_meta_keys(os.path.join(gt_folder, 'meta_info.txt'))]
        lq_keys = {os.path.splitext(k)[0] for k in _read_meta_keys(os.path.join(lq_folder, 'meta_info.txt'))}
        missing = [k for k in gt_keys if filename_tmpl.format(k) not in lq_keys]
        if missing:
            raise FileNotFoundError(f'{len(missing)} gt keys of {gt_folder} have no lq key in {lq_folder}: '
                                    f'{missing[:10]}')
        return [{'lq_path': filename_tmpl.format(k), 'gt_path': k} for k in sorted(gt_keys)]
    if meta_info_file is not None:
        gt_names = _read_meta_keys(meta_info_file)
        lq_names = None
    else:
        gt_names = scandir(gt_folder, recursive=True)
        lq_names = set(scandir(lq_folder, recursive=True))
    pairs, missing, used = [], [], set()
    for gt_name in gt_names:
        stem, ext = os.path.splitext(gt_name)
        lq_name = filename_tmpl.format(stem) + ext
        lq_exists = lq_name in lq_names if lq_names is not None else os.path.isfile(os.path.join(lq_folder, lq_name))
        if not lq_exists:
            missing.append(stem)
            continue
        used.add(lq_name)
        pairs.append({'lq_path': os.path.join(lq_folder, lq_name), 'gt_path': os.path.join(gt_folder, gt_name)})
    if missing:
        raise FileNotFoundError(f'{len(missing)} images of {gt_folder} have no input in {lq_folder} '
                                f'(filename_tmpl {filename_tmpl!r}); missing stems: {missing[:10]}')
    if lq_names is not None and lq_names - used:
        extra = sorted(os.path.splitext(n)[0] for n in lq_names - used)
        raise FileNotFoundError(f'{len(extra)} images of {lq_folder} have no ground truth in {gt_folder} '
                                f'(filename_tmpl {filename_tmpl!r}); unmatched stems: {extra[:10]}')
    if not pairs:
        raise FileNotFoundError(f'no images found in {gt_folder}')
    return pairs


@DATASET_REGISTRY.register()
class PairedImageDataset(data.Dataset):
    """Paired images (lq, gt) read from two folders or two lmdb databases.

    Training crops a random ``gt_size`` patch of gt and the matching ``gt_size // scale`` patch of lq, then
    applies flips/transpose identically. Images are returned as float32 RGB tensors in [0, 1].

    Args:
        opt (dict): Options:
            dataroot_gt (str): Ground-truth folder (or ``.lmdb`` folder).
            dataroot_lq (str): Input folder (or ``.lmdb`` folder).
            filename_tmpl (str): gt stem → lq stem template. Default: ``'{}'``.
            meta_info_file (str): Optional list of gt names (first token per line).
            io_backend (dict): ``{type: disk|lmdb}``. Default: disk.
            phase (str): ``train`` enables cropping and augmentation.
            gt_size (int): Training crop of gt (required in train phase).
            scale (int): gt / lq resolution ratio. Default: 1.
            use_hflip / use_flip (bool): Horizontal flips (``use_flip`` also enables vertical). Default: False.
            use_rot (bool): Vertical flips and transposes (BasicSR convention). Default: False.
            mean, std (list[float]): Optional normalisation.
            color (str): ``color`` or ``grayscale``. Default: ``color``.

    Item keys: ``lq``, ``gt``, ``lq_path``, ``gt_path`` and ``image_name``: the lq file stem, or its path relative
    to ``dataroot_lq`` (without extension) where stems repeat in nested folders.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.io_backend_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        self.backend = self.io_backend_opt.pop('type', 'disk')
        self.gt_folder = _check_folder(opt, 'dataroot_gt')
        self.lq_folder = _check_folder(opt, 'dataroot_lq')
        self.filename_tmpl = opt.get('filename_tmpl', '{}')
        self.scale = int(opt.get('scale') or 1)
        self.mean, self.std = opt.get('mean'), opt.get('std')
        self.color = opt.get('color', 'color')
        if self.backend == 'lmdb':
            self.io_backend_opt['db_paths'] = [self.lq_folder, self.gt_folder]
            self.io_backend_opt['client_keys'] = ['lq', 'gt']
            self.paths = paired_paths(self.gt_folder, self.lq_folder, self.filename_tmpl, lmdb=True)
        elif self.backend == 'disk':
            meta = opt.get('meta_info_file')
            if meta is not None and not os.path.isfile(os.path.expanduser(meta)):
                raise FileNotFoundError(f'dataset {opt.get("name")!r}: meta_info_file not found: {meta}')
            self.paths = paired_paths(self.gt_folder, self.lq_folder, self.filename_tmpl,
                                      os.path.expanduser(meta) if meta else None)
        else:
            raise ValueError(f'dataset {opt.get("name")!r}: io_backend type must be disk or lmdb, got {self.backend!r}')
        lmdb = self.backend == 'lmdb'  # lmdb paths are keys, relative already
        self.names = unique_names([p['lq_path'] if lmdb else os.path.relpath(p['lq_path'], self.lq_folder)
                                   for p in self.paths])
        self.file_client = FileClient(self.backend, **self.io_backend_opt)
        if opt.get('phase') == 'train':
            if opt.get('gt_size') is None:
                raise KeyError(f'dataset {opt.get("name")!r}: option "gt_size" is required for training')
            if int(opt['gt_size']) % self.scale:
                raise ValueError(f'dataset {opt.get("name")!r}: gt_size {opt["gt_size"]} is not divisible by '
                                 f'scale {self.scale}')

    def _read(self, path, client_key):
        try:
            return imfrombytes(self.file_client.get(path, client_key), self.color, float32=True)
        except ValueError as err:
            raise ValueError(f'could not decode image {path}: {err}') from None

    def __getitem__(self, index):
        paths = self.paths[index]
        gt = img2tensor(self._read(paths['gt_path'], 'gt'), bgr2rgb=True, float32=True)
        lq = img2tensor(self._read(paths['lq_path'], 'lq'), bgr2rgb=True, float32=True)
        if self.opt.get('phase') == 'train':
            gt_size = int(self.opt['gt_size'])
            gt, lq = paired_random_crop([gt, lq], gt_size // self.scale, scales=[self.scale, 1])
            use_flip = bool(self.opt.get('use_flip', False))
            use_rot = bool(self.opt.get('use_rot', False))
            gt, lq = augment([gt, lq], hflip=bool(self.opt.get('use_hflip', False)) or use_flip,
                             vflip=use_rot or use_flip, rotation=use_rot)
        if self.mean is not None or self.std is not None:
            mean = torch.tensor(self.mean if self.mean is not None else 0., dtype=torch.float32).view(-1, 1, 1)
            std = torch.tensor(self.std if self.std is not None else 1., dtype=torch.float32).view(-1, 1, 1)
            lq, gt = (lq - mean) / std, (gt - mean) / std
        return {'lq': lq, 'gt': gt, 'lq_path': paths['lq_path'], 'gt_path': paths['gt_path'],
                'image_name': self.names[index]}

    def __len__(self):
        return len(self.paths)
