"""Low-light event deblurring data (Zhou et al., IJCV 2023): synthetic train/test roots and real/hybrid folders.

Synthetic root (``data/train``, ``data/test``): ``subnetwork1/events_voxel_grid/<n>.npy`` (H, W, 13),
``share/APS_blur``, ``share/APS_blur_clean``, ``subnetwork2/APS`` gray PNGs, ``share/flow/<n>.npy`` (H, W, 4) and,
for the RGB model, ``subnetwork2/{RGB, RGB_blur, RGB_blur_clean}`` PNGs at 3H x 3W. Real/hybrid root:
``events_voxel_grid``, ``APS_blur`` and (hybrid, RGB model) ``RGB_blur``; no ground truth.

The voxel grid is standardised over its non-zero entries (float32) on the full frame; gray PNGs become (1, H, W),
colour PNGs are converted BGR→RGB; all values / 255. With the option ``event_repr`` the synthetic dataset builds
``E`` from the raw events (``others/events``) instead of reading the stored voxel grid.
"""
import os

import numpy as np
import torch
from torch.utils import data as data

from basicsr.data.transforms import paired_random_crop
from basicsr.events import build_representation, get_normalizer, normalize_nonzero, read_npy_events
from basicsr.utils.img_util import imread
from basicsr.utils.registry import DATASET_REGISTRY

__all__ = ['LowLightSyntheticDataset', 'LowLightRealDataset']

VOXEL_DIR = 'subnetwork1/events_voxel_grid'


def _root(opt):
    if 'dataroot' not in opt:
        raise KeyError(f'dataset {opt.get("name")!r}: option "dataroot" is required')
    root = os.path.expanduser(os.fspath(opt['dataroot']))
    if not os.path.isdir(root):
        raise FileNotFoundError(f'dataset {opt.get("name")!r}: folder of option "dataroot" not found: {root}')
    return root


def _list_stems(root, folder, ext, name):
    path = os.path.join(root, folder)
    if not os.path.isdir(path):
        raise FileNotFoundError(f'dataset {name!r}: folder {folder} not found under dataroot {root}')
    stems = sorted(os.path.splitext(n)[0] for n in os.listdir(path) if n.endswith(ext) and not n.startswith('.'))
    if not stems:
        raise FileNotFoundError(f'dataset {name!r}: no {ext} files in {path}')
    return stems


def _check_stems(root, stems, list_folder, folders, name):
    """Every folder (relative to root, with its extension) must hold every stem listed in ``list_folder``."""
    for folder, ext in folders:
        path = os.path.join(root, folder)
        if not os.path.isdir(path):
            raise FileNotFoundError(f'dataset {name!r}: folder {folder} not found under dataroot {root}')
        present = {os.path.splitext(n)[0] for n in os.listdir(path) if n.endswith(ext)}
        missing = [s for s in stems if s not in present]
        if missing:
            raise FileNotFoundError(f'dataset {name!r}: {len(missing)} of the {len(stems)} samples listed in '
                                    f'{list_folder} have no {ext} '
                                    f'file in {path}; missing stems: {missing[:10]}')


def _png(path):
    img = imread(path, 'unchanged', float32=True)
    if img.ndim == 2:
        return img[None]
    if img.shape[2] == 1:
        return img.transpose(2, 0, 1)
    return img[:, :, 2::-1].transpose(2, 0, 1)


def _npy_chw(path):
    arr = np.load(path, allow_pickle=False)
    if arr.ndim != 3:
        raise ValueError(f'{path}: expected an (H, W, C) array, got shape {arr.shape}')
    return arr.transpose(2, 0, 1)


class _LowLightBase(data.Dataset):
    """Shared set-up, loading, size checks and the optional aligned crop.

    Args:
        opt (dict): Dataset options (``dataroot``, ``rgb``, ``crop_size``, ``name``, ``event_repr``).
        sources (callable): ``rgb -> {key: (folder, extension, scale)}``; key ``E`` lists the samples.
    """

    raw_events = None  # folder of the raw events (N, 4) [t, x, y, p] .npy files, when the layout has them

    def __init__(self, opt, sources):
        super().__init__()
        self.opt = opt
        self.root = _root(opt)
        self.rgb = bool(opt.get('rgb', False))
        self.sources = sources(self.rgb)
        name = opt.get('name')
        self.representation = self.normalize = None
        if opt.get('event_repr') is not None:
            self._set_representation(opt['event_repr'], name)
        self.stems = _list_stems(self.root, self.sources['E'][0], '.npy', name)
        _check_stems(self.root, self.stems, self.sources['E'][0],
                     [(f, e) for k, (f, e, _) in self.sources.items() if k != 'E'], name)

    def _set_representation(self, event_repr, name):
        """Option ``event_repr``: ``E`` from the raw events; normalised by the representation's own ``normalize``,
        else standardised over its non-zero entries as the stored grid is."""
        if self.raw_events is None:
            raise ValueError(f'dataset {name!r}: option "event_repr" needs raw events, but the '
                             f'{type(self).__name__} layout stores only precomputed voxel grids; remove event_repr '
                             'to use them')
        if not isinstance(event_repr, dict):
            raise ValueError(f'dataset {name!r}: option event_repr must be a dict such as '
                             f'{{type: voxel_grid, num_bins: 13, t_range: [0, 0.1]}}, got {event_repr!r}')
        rep = dict(event_repr)
        normalize = rep.pop('normalize', 'nonzero')
        self.representation, self.normalize = build_representation(rep), get_normalizer(normalize)
        self.sources = {**self.sources, 'E': (self.raw_events, '.npy', 1)}

    def _events(self, path, height, width):
        rep = self.representation(read_npy_events(path, height, width), height, width)
        return rep if self.normalize is None else self.normalize(rep)

    def _load(self, index):
        stem = self.stems[index]
        arrays, scales = {}, {}
        for key, (folder, ext, scale) in self.sources.items():
            path = os.path.join(self.root, folder, stem + ext)
            if key == 'E' and self.representation is not None:
                continue  # built from the raw events at the size of B, below
            if key == 'E':
                arr = normalize_nonzero(_npy_chw(path))
            elif ext == '.npy':
                arr = np.asarray(_npy_chw(path), dtype=np.float32)
            else:
                arr = _png(path)
            arrays[key], scales[key] = arr, scale
        if self.representation is not None:
            folder, ext, _ = self.sources['E']
            arrays['E'] = self._events(os.path.join(self.root, folder, stem + ext), *arrays['B'].shape[-2:])
            scales['E'] = 1
        h, w = arrays['E'].shape[-2:]
        for key, arr in arrays.items():
            s = scales[key]
            if arr.shape[-2:] != (h * s, w * s):
                folder, ext, _ = self.sources[key]
                raise ValueError(f'sample {stem}: {os.path.join(self.root, folder, stem + ext)} ({key}) has size '
                                 f'{arr.shape[-2]}x{arr.shape[-1]}, expected {h * s}x{w * s} ({s}x the event grid '
                                 f'{h}x{w})')
        crop = self.opt.get('crop_size')
        if crop:
            keys = list(arrays)
            try:
                cropped = paired_random_crop([arrays[k] for k in keys], crop, scales=[scales[k] for k in keys])
            except ValueError as err:
                raise ValueError(f'sample {stem}: {err}') from None
            arrays = dict(zip(keys, cropped))
        item = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in arrays.items()}
        if not self.rgb:
            item['Bi'] = item['B']
        item['name'] = stem
        item['image_name'] = stem
        return item

    def __getitem__(self, index):
        return self._load(index)

    def __len__(self):
        return len(self.stems)


@DATASET_REGISTRY.register()
class LowLightSyntheticDataset(_LowLightBase):
    """Synthetic low-light training/test data with ground truth.

    Args:
        opt (dict): Options:
            dataroot (str): Synthetic root (``data/train`` or ``data/test``).
            rgb (bool): RGB model: ``Bi``, ``Bi_clean`` and ``S`` are the 3x RGB frames. Default: False.
            phase (str): ``train``, ``val`` or ``test`` (all load the ground truth).
            crop_size (int | None): Random crop in event-grid pixels, applied at 3x to RGB frames, in every phase
                where it is set (leave it unset for evaluation). No flips: they would change the flow targets.
                Default: None.
            event_repr (dict | None): Build ``E`` from the raw events ``others/events/<n>.npy`` with this registered
                representation (see :func:`basicsr.events.build_representation`) instead of reading the stored
                grid; ``{type: voxel_grid, num_bins: 13, t_range: [0, 0.1]}`` is the stored one (fixed exposure
                window). Normalised by its own ``normalize``, else over its non-zero entries. Default: None.

    Item keys: ``E`` (13, H, W), ``B`` (1, H, W), ``Bi`` (``B`` itself, or (3, 3H, 3W) RGB), ``Bi_clean`` and
    ``S`` (like ``Bi``), ``F`` (4, H, W), ``name`` and ``image_name`` (the stem).
    """

    raw_events = 'others/events'

    def __init__(self, opt):
        super().__init__(opt, self.layout)

    @staticmethod
    def layout(rgb):
        """Folders of the synthetic layout per item key: ``{key: (folder, extension, scale)}``."""
        sources = {'E': (VOXEL_DIR, '.npy', 1), 'B': ('share/APS_blur', '.png', 1), 'F': ('share/flow', '.npy', 1)}
        if rgb:
            sources.update({'Bi': ('subnetwork2/RGB_blur', '.png', 3),
                            'Bi_clean': ('subnetwork2/RGB_blur_clean', '.png', 3), 'S': ('subnetwork2/RGB', '.png', 3)})
        else:
            sources.update({'Bi_clean': ('share/APS_blur_clean', '.png', 1), 'S': ('subnetwork2/APS', '.png', 1)})
        return sources


@DATASET_REGISTRY.register()
class LowLightRealDataset(_LowLightBase):
    """Real (DAVIS346) or hybrid (RGB-DAVIS) low-light data without ground truth.

    Args:
        opt (dict): Options:
            dataroot (str): Folder with ``events_voxel_grid``, ``APS_blur`` (and ``RGB_blur`` for ``rgb``).
            rgb (bool): Hybrid data for the RGB model: ``Bi`` = ``RGB_blur`` at 3x. Default: False.
            crop_size (int | None): Random crop in event-grid pixels. Default: None.
            event_repr: Must be unset: the layout has no raw events (a clear error says so).

    Item keys: ``E``, ``B``, ``Bi``, ``name``, ``image_name``.
    """

    def __init__(self, opt):
        super().__init__(opt, self.layout)

    @staticmethod
    def layout(rgb):
        """Folders of the real/hybrid layout per item key: ``{key: (folder, extension, scale)}``."""
        sources = {'E': ('events_voxel_grid', '.npy', 1), 'B': ('APS_blur', '.png', 1)}
        if rgb:
            sources['Bi'] = ('RGB_blur', '.png', 3)
        return sources
