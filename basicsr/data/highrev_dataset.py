"""HighREV (NTIRE 2025 event-based deblurring) datasets: blurry/sharp PNGs with raw npz events or voxel npz.

Split layout: ``<dataroot>/blur/SEQ_%05d.png``, ``<dataroot>/sharp/SEQ_%05d.png``,
``<dataroot>/event/SEQ_%05d_%02d.npz`` (raw chunks) and optionally ``<dataroot_voxel>/SEQ_%05d.npz`` (key
``voxel``, float32 (H, W, C)). Images are converted BGR→RGB; the voxel grid is standardised over its non-zero
entries after cropping and augmentation (``norm_voxel``).
"""
import os
from collections import defaultdict

import numpy as np
import torch
from torch.utils import data as data

from basicsr.data.transforms import augment, paired_random_crop
from basicsr.events import (EventStream, build_representation, check_denoise_options, denoise_events,
                            normalize_nonzero, read_highrev_events, read_voxel_npz)
from basicsr.utils.img_util import imread
from basicsr.utils.misc import scandir
from basicsr.utils.registry import DATASET_REGISTRY

__all__ = ['NpzPngSingleDeblurDataset', 'VoxelnpzPngSingleDeblurDataset']


def _folder(opt, key, sub=None):
    if key not in opt:
        raise KeyError(f'dataset {opt.get("name")!r}: option "{key}" is required')
    path = os.path.expanduser(os.fspath(opt[key]))
    if sub is not None:
        path = os.path.join(path, sub)
    if not os.path.isdir(path):
        what = f'"{sub}" folder under option "{key}"' if sub else f'folder of option "{key}"'
        raise FileNotFoundError(f'dataset {opt.get("name")!r}: {what} not found: {path}')
    return path


def _stems(names):
    return [os.path.splitext(n)[0] for n in names]


class _HighREVBase(data.Dataset):
    """Shared part: blurry/sharp lists, image reading, crop, augmentation and voxel normalisation."""

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.blur_dir = _folder(opt, 'dataroot', 'blur')
        self.return_gt_frame = bool(opt.get('return_gt_frame', True))
        self.blur_names = scandir(self.blur_dir, suffix='.png', recursive=True)
        if not self.blur_names:
            raise FileNotFoundError(f'dataset {opt.get("name")!r}: no .png files in {self.blur_dir}')
        if self.return_gt_frame:
            self.sharp_dir = _folder(opt, 'dataroot', 'sharp')
            sharp = set(scandir(self.sharp_dir, suffix='.png', recursive=True))
            missing = [n for n in self.blur_names if n not in sharp]
            if missing:
                raise FileNotFoundError(f'dataset {opt.get("name")!r}: {len(missing)} blurry frames have no sharp '
                                        f'frame in {self.sharp_dir} (set return_gt_frame: false for data without '
                                        f'ground truth); missing stems: {_stems(missing)[:10]}')
        self.norm_voxel = bool(opt.get('norm_voxel', True))
        self.train = opt.get('phase') == 'train'
        if self.train and opt.get('gt_size') is None:
            raise KeyError(f'dataset {opt.get("name")!r}: option "gt_size" is required for training')

    def __len__(self):
        return len(self.blur_names)

    def _voxel(self, index, height, width):
        raise NotImplementedError

    def __getitem__(self, index):
        name = self.blur_names[index]
        blur_path = os.path.join(self.blur_dir, name)
        blur = imread(blur_path, 'color', float32=True)[:, :, ::-1].transpose(2, 0, 1)
        arrays = [blur]
        if self.return_gt_frame:
            sharp_path = os.path.join(self.sharp_dir, name)
            sharp = imread(sharp_path, 'color', float32=True)[:, :, ::-1].transpose(2, 0, 1)
            if sharp.shape != blur.shape:
                raise ValueError(f'sharp frame {sharp_path} has shape {sharp.shape[1:]} but blurry frame '
                                 f'{blur_path} has {blur.shape[1:]}')
            arrays.append(sharp)
        voxel = self._voxel(index, blur.shape[1], blur.shape[2])
        arrays.append(voxel)
        try:
            if self.train:
                arrays = paired_random_crop(arrays, int(self.opt['gt_size']))
                use_rot = bool(self.opt.get('use_rot', False))
                arrays = augment(arrays, hflip=bool(self.opt.get('use_hflip', False)), vflip=use_rot,
                                 rotation=use_rot)
        except ValueError as err:
            raise ValueError(f'{blur_path}: {err}') from None
        voxel = arrays[-1]
        if self.norm_voxel:
            voxel = normalize_nonzero(voxel)
        item = {'frame': torch.from_numpy(np.ascontiguousarray(arrays[0], dtype=np.float32))}
        if self.return_gt_frame:
            item['frame_gt'] = torch.from_numpy(np.ascontiguousarray(arrays[1], dtype=np.float32))
        item['voxel'] = torch.from_numpy(np.ascontiguousarray(voxel, dtype=np.float32))
        item['image_name'] = os.path.splitext(name)[0]
        item['lq_path'] = blur_path
        return item


@DATASET_REGISTRY.register()
class NpzPngSingleDeblurDataset(_HighREVBase):
    """HighREV with raw events: the chunks of each blurry frame (last chunk dropped) → voxel grid.

    Args:
        opt (dict): Options:
            dataroot (str): Split folder with ``blur``, ``sharp`` and ``event`` sub-folders.
            voxel_bins (int): Number of voxel-grid bins. Default: 6.
            event_repr (dict | None): Representation instead of the voxel grid, by registered name, e.g.
                ``{type: scer, num_bins: 6}`` (see :func:`basicsr.events.build_representation`). Default: None.
            phase (str): ``train`` enables the ``gt_size`` crop and the flips.
            gt_size (int): Training crop (required in train phase).
            use_hflip (bool): Horizontal flips. Default: False.
            use_rot (bool): Vertical flips and H/W transposes. Default: False.
            norm_voxel (bool): Standardise non-zero voxel entries after augmentation. Default: True.
            return_gt_frame (bool): Load ``sharp`` frames. Default: True.
            time_scale (float): Multiplier from the files' timestamps to seconds. Default: 1.0.
            sort_events (bool): Stable-sort unsorted events instead of raising. Default: False.
            event_denoise (dict | None): Denoise each frame's events before the representation, e.g.
                ``{ba_window: 0.01, hot_pixels: true}`` (see :func:`basicsr.events.denoise_events`; times in
                seconds after ``time_scale``). Default: None (events as recorded).

    Item keys: ``frame``, ``frame_gt`` (3, H, W) RGB float [0, 1], ``voxel`` (bins, H, W), ``image_name``,
    ``lq_path``.
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.event_dir = _folder(opt, 'dataroot', 'event')
        self.representation = build_representation(
            opt.get('event_repr') or {'type': 'voxel_grid', 'num_bins': int(opt.get('voxel_bins', 6))})
        self.time_scale = float(opt.get('time_scale', 1.0))
        self.sort_events = bool(opt.get('sort_events', False))
        self.denoise = opt.get('event_denoise')
        try:
            check_denoise_options(self.denoise, 'event_denoise')
        except ValueError as err:
            raise ValueError(f'dataset {opt.get("name")!r}: {err}') from None
        chunks = defaultdict(list)
        for rel in scandir(self.event_dir, suffix='.npz', recursive=True):
            chunks[os.path.splitext(rel)[0].rsplit('_', 1)[0]].append(os.path.join(self.event_dir, rel))
        self.chunks = []
        too_few = []
        for name in self.blur_names:
            paths = sorted(chunks.get(os.path.splitext(name)[0], []))
            if len(paths) < 2:
                too_few.append(f'{os.path.splitext(name)[0]} ({len(paths)})')
            self.chunks.append(paths)
        if too_few:
            raise FileNotFoundError(f'dataset {opt.get("name")!r}: {len(too_few)} blurry frames have fewer than 2 '
                                    f'event chunks <stem>_NN.npz in {self.event_dir} (the last chunk is dropped); '
                                    f'stems (chunk count): {too_few[:10]}')

    def _voxel(self, index, height, width):
        events = read_highrev_events(self.chunks[index], height=height, width=width, time_scale=self.time_scale,
                                     drop_last=True, sort=self.sort_events)
        if self.denoise:
            events = EventStream(*denoise_events(events.x, events.y, events.t, events.p, height, width, self.denoise),
                                 height, width)
        return self.representation(events, height, width)


@DATASET_REGISTRY.register()
class VoxelnpzPngSingleDeblurDataset(_HighREVBase):
    """HighREV with pre-computed voxel grids (``<dataroot_voxel>/*.npz``, key ``voxel``, (H, W, C)).

    Voxel files are matched to the blurry frames by sorted order; their counts must be equal.

    Args:
        opt (dict): Options as :class:`NpzPngSingleDeblurDataset` (without ``voxel_bins``, ``time_scale``) plus
            dataroot_voxel (str): Folder of voxel ``.npz`` files.

    Item keys: ``frame``, ``frame_gt``, ``voxel`` (C, H, W), ``image_name``, ``lq_path``.
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.voxel_dir = _folder(opt, 'dataroot_voxel')
        self.voxel_names = scandir(self.voxel_dir, suffix='.npz', recursive=True)
        if len(self.voxel_names) != len(self.blur_names):
            raise ValueError(f'dataset {opt.get("name")!r}: {len(self.voxel_names)} voxel .npz files in '
                             f'{self.voxel_dir} but {len(self.blur_names)} blurry .png frames in {self.blur_dir}; '
                             'they are matched by sorted order and must be equal in number')

    def _voxel(self, index, height, width):
        path = os.path.join(self.voxel_dir, self.voxel_names[index])
        voxel = read_voxel_npz(path)
        if voxel.shape[:2] != (height, width):
            raise ValueError(f'voxel file {path} has shape {voxel.shape}; expected (H, W, C) with H, W = '
                             f'{(height, width)} of the blurry frame {self.blur_names[index]}')
        return voxel.transpose(2, 0, 1)
