"""EFNet processed h5 sequences (GoPro / REBlur releases): blurry frame, sharp frame, SCER voxel and event mask.

Layout per sequence file (``formats.md``): ``images/image%09d`` uint8 (3, H, W), ``sharp_images/image%09d``,
``voxels/voxel%09d`` float32 (C, H, W) un-normalised SCER, ``masks/mask%09d`` uint8 (1, H, W) 0/255. Frames are
returned in stored channel order (BGR), exactly as the released EFNet weights were trained.
"""
import csv
import io
import os

import numpy as np
import torch
from torch.utils import data as data

from basicsr.data.sample_names import unique_names
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.events import event_mask, normalize_maxabs
from basicsr.utils.file_client import FileClient
from basicsr.utils.registry import DATASET_REGISTRY

__all__ = ['H5ImageDataset', 'list_h5_files', 'read_lmdb_meta']

# group name -> dataset-name prefix inside the group
GROUPS = {'images': 'image', 'sharp_images': 'image', 'voxels': 'voxel', 'masks': 'mask'}


def list_h5_files(dataroot):
    """Lists the h5 files of a split: a folder (sorted ``*.h5``/``*.hdf5``) or a txt/csv list of paths.

    Relative paths in a list are taken as given when they exist, else relative to the list file's folder. In a
    csv file the first column holds the path; a first row that does not name an h5 file is a header.

    Args:
        dataroot (str): Folder or list file.

    Returns:
        list[str]: h5 file paths.

    Raises:
        FileNotFoundError: For a missing folder/list/listed file or an empty folder, naming the path.
    """
    dataroot = os.path.expanduser(os.fspath(dataroot))
    if os.path.isdir(dataroot):
        files = sorted(os.path.join(dataroot, n) for n in os.listdir(dataroot)
                       if n.endswith(('.h5', '.hdf5')) and not n.startswith('.'))
        if not files:
            raise FileNotFoundError(f'no .h5 files in the folder of option "dataroot": {dataroot}')
        return files
    if not os.path.isfile(dataroot):
        raise FileNotFoundError(f'folder or list of option "dataroot" not found: {dataroot}')
    with open(dataroot, newline='') as f:
        if dataroot.endswith('.csv'):
            entries = [row[0].strip() for row in csv.reader(f) if row and row[0].strip()]
            if entries and not entries[0].endswith(('.h5', '.hdf5')):
                entries = entries[1:]
        else:
            entries = [line.strip() for line in f if line.strip() and not line.lstrip().startswith('#')]
    files = []
    for entry in entries:
        path = os.path.expanduser(entry)
        if not os.path.isfile(path) and not os.path.isabs(path):
            path = os.path.join(os.path.dirname(os.path.abspath(dataroot)), path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'h5 file {entry!r} listed in {dataroot} not found')
        files.append(path)
    if not files:
        raise FileNotFoundError(f'the list of option "dataroot" names no h5 files: {dataroot}')
    return files


def read_lmdb_meta(lmdb_path):
    """Reads the sequences of an lmdb made by ``scripts/data_preparation/create_lmdb.py`` from an h5 split.

    Args:
        lmdb_path (str): The lmdb folder; its ``meta_info.txt`` has one ``<key> <shape> <dtype>`` line per array,
            keys ``<relative h5 name without extension>/<group>/<name>%09d``.

    Returns:
        list[dict]: Per sequence ``{'prefix', 'counts': {group: number of entries}}``, sorted by prefix.
    """
    meta = os.path.join(lmdb_path, 'meta_info.txt')
    if not os.path.isfile(meta):
        raise FileNotFoundError(f'lmdb folder of option "dataroot" has no meta_info.txt: {lmdb_path}')
    seqs = {}
    with open(meta) as f:
        for line in f:
            if not line.strip():
                continue
            key = line.split()[0]
            prefix, group, _ = key.rsplit('/', 2)
            counts = seqs.setdefault(prefix, {})
            counts[group] = counts.get(group, 0) + 1
    if not seqs:
        raise FileNotFoundError(f'lmdb meta_info.txt lists no arrays: {meta}')
    return [{'prefix': p, 'counts': seqs[p]} for p in sorted(seqs)]


def _sequence_name(path):
    """The file name up to its first dot (``formats.md``)."""
    return os.path.basename(path).split('.')[0]


def _h5_counts(path):
    import h5py
    try:
        with h5py.File(path, 'r') as f:
            counts = {}
            for group, name in GROUPS.items():
                if group in f:
                    keys = sorted(k for k in f[group].keys() if k.startswith(name))
                    expected = [f'{name}{i:09d}' for i in range(len(keys))]
                    if keys != expected:
                        raise ValueError(f'h5 file {path}: group "{group}" is not indexed {name}000000000 ... '
                                         f'contiguously (found {keys[:3]} ...)')
                    counts[group] = len(keys)
    except OSError as err:
        raise OSError(f'cannot open h5 file {path}: {err}') from None
    if 'images' not in counts:
        raise KeyError(f'h5 file {path} has no "images" group (EFNet processed layout expected)')
    return counts


def _to_float_image(img):
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float32) / np.float32(255.)
    if img.dtype == np.uint16:
        return img.astype(np.float32) / np.float32(65535.)
    return img.astype(np.float32)


@DATASET_REGISTRY.register()
class H5ImageDataset(data.Dataset):
    """EFNet processed h5 split: one file per sequence, all samples of all files in sorted order.

    Per sample: load the frames and the voxel, max-abs normalise the voxel on the full frame (``norm_voxel``),
    keep the top ``crop_rows`` rows if set, random-crop ``crop_size`` and flip, identically for every array. As in
    EFNet, crop and flips follow the options in every phase: leave ``crop_size``/``use_flip``/``use_rot`` unset in
    validation and test options for full-frame evaluation.
    File handles (h5 or lmdb) are opened lazily in the process that reads, so the dataset pickles cleanly.

    Args:
        opt (dict): Options:
            dataroot (str): Folder of h5 files, txt/csv list of h5 paths, or an lmdb folder (``io_backend`` lmdb).
            io_backend (dict): ``{type: h5}`` (default) or ``{type: lmdb}``.
            crop_size (int | None): Random crop; None keeps full frames. Default: None.
            use_flip (bool): Random flips. Default: False.
            use_rot (bool): Random H/W transpose. Default: False.
            flip_mode (str): ``independent`` (H and W flipped independently) or ``joint`` (EFNet: one draw, 180
                degrees). Default: ``independent``.
            norm_voxel (bool): Max-abs normalise the voxel. Default: True.
            return_voxel (bool): Return ``voxel``. Default: True.
            return_mask (bool): Return ``mask``; computed from the voxel with ``event_mask`` when the file has no
                ``masks`` group. Default: the value of ``use_mask`` (False).
            return_gt_frame (bool): Return ``frame_gt``. Default: True.
            crop_rows (int | None): Keep only the top rows (EFNet REBlur evaluation used 256). Default: None.
            in_chn (int): Frame channels; single-channel frames are replicated to 3 when 3. Default: 3.
            mean, std: Accepted and ignored, as in EFNet (frames stay in [0, 1]; the released weights expect it).
            event_repr (dict | None): Must be unset: the processed layout stores a precomputed SCER and no raw
                events, so no other representation can be built from it (a clear error says so). Default: None.

    Item keys: ``frame`` (C, H, W) float [0, 1], ``frame_gt``, ``voxel`` (C_ev, H, W) float32, ``mask``
    (1, H, W) in {0, 1}, ``seq``, ``image_name`` = ``<seq>/<index:04d>``, ``lq_path``. The sequence name is the
    file name up to its first dot; files of a list that share it are named by their relative path instead.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        name = opt.get('name')
        if 'dataroot' not in opt:
            raise KeyError(f'dataset {name!r}: option "dataroot" is required (folder or list of h5 files)')
        io_opt = dict(opt.get('io_backend') or {'type': 'h5'})
        self.backend = io_opt.pop('type', 'h5')
        self.crop_size = opt.get('crop_size')
        self.use_flip = bool(opt.get('use_flip', False))
        self.use_rot = bool(opt.get('use_rot', False))
        self.flip_mode = opt.get('flip_mode', 'independent')
        if self.flip_mode not in ('independent', 'joint'):
            raise ValueError(f"dataset {name!r}: flip_mode must be 'independent' or 'joint', got {self.flip_mode!r}")
        self.norm_voxel = bool(opt.get('norm_voxel', True))
        self.return_voxel = bool(opt.get('return_voxel', True))
        self.return_mask = bool(opt.get('return_mask', opt.get('use_mask', False)))
        self.return_gt_frame = bool(opt.get('return_gt_frame', True))
        self.crop_rows = opt.get('crop_rows')
        self.in_chn = int(opt.get('in_chn', 3))
        if opt.get('event_repr') is not None:
            raise ValueError(f'dataset {name!r}: option "event_repr" needs raw events, but EFNet processed h5 files '
                             'store a precomputed SCER (groups images, voxels, masks) and no events; remove '
                             'event_repr to use the stored voxels, or read the raw recording with a dataset that '
                             'takes event_repr (e.g. NpzPngSingleDeblurDataset, SyntheticEventDeblurDataset)')

        dataroot = os.path.expanduser(os.fspath(opt['dataroot']))
        if self.backend in ('h5', 'hdf5'):
            paths = list_h5_files(dataroot)
            root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
            seqs = unique_names([os.path.relpath(os.path.abspath(p), root) for p in paths], _sequence_name)
            self.sources = [{'seq': seq, 'path': path, 'counts': _h5_counts(path)} for seq, path in zip(seqs, paths)]
            self.file_client = FileClient('h5', **io_opt)
        elif self.backend == 'lmdb':
            if not os.path.isdir(dataroot):
                raise FileNotFoundError(f'dataset {name!r}: lmdb folder of option "dataroot" not found: {dataroot}')
            self.sources = []
            for entry in read_lmdb_meta(dataroot):
                if 'images' not in entry['counts']:
                    raise KeyError(f'lmdb {dataroot}: sequence {entry["prefix"]} has no "images" arrays')
                self.sources.append({'path': entry['prefix'], 'counts': entry['counts']})
            for src, seq in zip(self.sources, unique_names([s['path'] for s in self.sources], _sequence_name)):
                src['seq'] = seq
            io_opt.setdefault('db_paths', dataroot)
            self.file_client = FileClient('lmdb', **io_opt)
        else:
            raise ValueError(f'dataset {name!r}: io_backend type must be h5 or lmdb, got {self.backend!r}')

        for src in self.sources:
            self._check_groups(src, dataroot)
        self.samples = [(k, i) for k, src in enumerate(self.sources) for i in range(src['counts']['images'])]

    def _check_groups(self, src, dataroot):
        counts, where = src['counts'], f'{src["path"]} (dataroot {dataroot})'
        needed = []
        if self.return_gt_frame:
            needed.append('sharp_images')
        if self.return_voxel or (self.return_mask and 'masks' not in counts):
            needed.append('voxels')
        if self.return_mask and 'masks' in counts:
            needed.append('masks')
        for group in needed:
            if group not in counts:
                hint = {'sharp_images': 'set return_gt_frame: false for data without ground truth',
                        'voxels': 'set return_voxel: false (and return_mask: false) for frames only'}[group]
                raise KeyError(f'{where} has no "{group}" group; {hint}')
            if counts[group] != counts['images']:
                raise ValueError(f'{where}: {counts[group]} entries in "{group}" but {counts["images"]} in "images"')

    def _read(self, src, group, index):
        key = f'{group}/{GROUPS[group]}{index:09d}'
        if self.backend == 'lmdb':
            return np.load(io.BytesIO(self.file_client.get(f'{src["path"]}/{key}')), allow_pickle=False)
        return self.file_client.get(key, src['path'])

    def _frame(self, src, group, index):
        img = _to_float_image(self._read(src, group, index))
        if img.ndim == 2:
            img = img[None]
        if img.shape[0] == 1 and self.in_chn == 3:
            img = np.repeat(img, 3, axis=0)
        return img

    def __getitem__(self, index):
        src_id, idx = self.samples[index]
        src = self.sources[src_id]
        arrays = {'frame': self._frame(src, 'images', idx)}
        if self.return_gt_frame:
            arrays['frame_gt'] = self._frame(src, 'sharp_images', idx)
        raw_voxel = None
        if self.return_voxel or (self.return_mask and 'masks' not in src['counts']):
            raw_voxel = np.asarray(self._read(src, 'voxels', idx), dtype=np.float32)
        if self.return_voxel:
            arrays['voxel'] = normalize_maxabs(raw_voxel) if self.norm_voxel else raw_voxel
        if self.return_mask:
            if 'masks' in src['counts']:
                mask = np.asarray(self._read(src, 'masks', idx))
                mask = (mask.reshape((1, ) + mask.shape[-2:]) > 0).astype(np.float32)
            else:
                mask = event_mask(raw_voxel)[None].astype(np.float32)
            arrays['mask'] = mask

        keys = list(arrays)
        values = [arrays[k] for k in keys]
        where = f'sample {index} ({src["path"]}, frame {idx})'
        if self.crop_rows:
            values = [v[..., :int(self.crop_rows), :] for v in values]
        try:
            if self.crop_size:
                values = paired_random_crop(values, self.crop_size)
            if self.use_flip or self.use_rot:
                values = augment(values, hflip=self.use_flip, vflip=self.use_flip, rotation=self.use_rot,
                                 flip_mode=self.flip_mode)
        except ValueError as err:
            raise ValueError(f'{where}: arrays {keys}: {err}') from None

        item = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in zip(keys, values)}
        item['seq'] = src['seq']
        item['image_name'] = f'{src["seq"]}/{idx:04d}'
        item['lq_path'] = f'{src["path"]}/images/image{idx:09d}'
        return item

    def __len__(self):
        return len(self.samples)
