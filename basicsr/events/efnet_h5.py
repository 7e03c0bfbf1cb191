"""Writer of the EFNet processed h5 layout (one file per sequence; read by ``basicsr.data.H5ImageDataset``).

Layout (``formats.md``): ``images/image%09d`` uint8 (C, H, W) channel-first in stored (BGR) order,
``sharp_images/image%09d`` the same, ``voxels/voxel%09d`` float32 (C_ev, H, W) un-normalised SCER,
``masks/mask%09d`` uint8 (1, H, W) 0/255; every dataset has the attribute ``size`` (its shape) and the file the
attribute ``sensor_resolution`` = [H, W]. Files are written under a temporary name in the same folder and renamed
when complete, so an interrupted run never leaves a truncated file under the final name.
"""
import os

import numpy as np

from basicsr.events.stream import EventFormatError
from basicsr.utils.atomic_writer import AtomicWriter

__all__ = ['EFNetH5Writer', 'write_efnet_h5', 'efnet_frame', 'efnet_mask', 'efnet_tmp_path']

TMP_TAG = '.tmp-'


def efnet_tmp_path(path):
    """Temporary name of an output file while it is written (same folder, hidden, tagged with the process id).

    Args:
        path (str): Final path.

    Returns:
        str: Temporary path ``<folder>/.<name>.tmp-<pid>``.
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    return os.path.join(folder, f'.{name}{TMP_TAG}{os.getpid()}')


def efnet_frame(image, channels=3, where='frame'):
    """Converts a frame as stored in a raw event h5 / PNG to the processed layout: uint8 (C, H, W), channel-first.

    Gray (H, W) or (H, W, 1) frames are replicated to 3 channels when ``channels`` is 3; colour (H, W, 3) frames
    keep their stored (BGR) order, or become luma when ``channels`` is 1.

    Args:
        image (np.ndarray): uint8 (H, W), (H, W, 1) or (H, W, 3).
        channels (int): 1 or 3. Default: 3.
        where (str): Name of the frame for error messages. Default: ``'frame'``.

    Returns:
        np.ndarray: uint8 (channels, H, W).
    """
    image = np.asarray(image)
    if channels not in (1, 3):
        raise ValueError(f'{where}: channels must be 1 or 3, got {channels}.')
    if image.dtype != np.uint8:
        raise EventFormatError(f'{where}: expected a uint8 frame, got dtype {image.dtype}.')
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        out = image[None]
        return np.ascontiguousarray(np.repeat(out, channels, axis=0))
    if image.ndim != 3 or image.shape[2] != 3:
        raise EventFormatError(f'{where}: expected a frame of shape (H, W), (H, W, 1) or (H, W, 3), got '
                               f'{image.shape}.')
    if channels == 1:
        import cv2
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[None]
    return np.ascontiguousarray(image.transpose(2, 0, 1))


def efnet_mask(mask):
    """Converts a mask (bool, {0, 1} or {0, 255}; (H, W) or (1, H, W)) to the stored form uint8 (1, H, W) 0/255.

    Args:
        mask (np.ndarray): The mask, e.g. from :func:`basicsr.events.event_mask`.

    Returns:
        np.ndarray: uint8 (1, H, W) with values 0 and 255.
    """
    mask = np.asarray(mask)
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3 or mask.shape[0] != 1:
        raise EventFormatError(f'mask must be (H, W) or (1, H, W), got shape {mask.shape}.')
    return np.where(mask > 0, 255, 0).astype(np.uint8)


class EFNetH5Writer(AtomicWriter):
    """Writes one EFNet processed h5 file sample by sample, atomically.

    Entries go to a temporary file in the output folder; :meth:`close` after success renames it to the final
    name, while leaving the ``with`` block by an exception deletes it. Use as a context manager::

        with EFNetH5Writer('seq.h5', (H, W)) as writer:
            writer.add(frame, voxel, mask, sharp)

    Args:
        path (str | os.PathLike): Final output path.
        sensor_resolution (tuple[int, int]): (H, W) of the stored frames, voxels and masks.
    """

    def __init__(self, path, sensor_resolution):
        import h5py
        self.path = os.fspath(path)
        res = [int(v) for v in np.asarray(sensor_resolution).ravel()]
        if len(res) != 2 or min(res) <= 0:
            raise ValueError(f'{self.path}: sensor_resolution must be [H, W] with positive sizes, got {res}.')
        self.height, self.width = res
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self.tmp = efnet_tmp_path(self.path)
        self._file = h5py.File(self.tmp, 'w')
        self._file.attrs['sensor_resolution'] = np.asarray(res)
        self.count = 0
        self._has_sharp = None

    def _put(self, group, name, array):
        ds = self._file.require_group(group).create_dataset(name, data=array)
        ds.attrs['size'] = np.asarray(array.shape)

    def _check_hw(self, array, what, ndim):
        if array.ndim != ndim or array.shape[-2:] != (self.height, self.width):
            raise EventFormatError(f'{self.path}: {what} {self.count} has shape {array.shape}; expected '
                                   f'{"(C, " if ndim == 3 else "("}{self.height}, {self.width}) '
                                   f'(sensor_resolution).')

    def add(self, frame, voxel, mask, sharp=None):
        """Appends one sample (index = number of samples added so far).

        Args:
            frame (np.ndarray): uint8 (C, H, W) blurry frame, channel-first, stored order.
            voxel (np.ndarray): (C_ev, H, W) SCER, stored as float32.
            mask (np.ndarray): Event mask, see :func:`efnet_mask`.
            sharp (np.ndarray | None): uint8 (C, H, W) ground truth; given for every sample or for none.
        """
        frame = np.asarray(frame)
        voxel = np.asarray(voxel, dtype=np.float32)
        mask = efnet_mask(mask)
        if frame.dtype != np.uint8:
            raise EventFormatError(f'{self.path}: frame {self.count} must be uint8, got {frame.dtype}.')
        self._check_hw(frame, 'frame', 3)
        self._check_hw(voxel, 'voxel', 3)
        self._check_hw(mask, 'mask', 3)
        has_sharp = sharp is not None
        if self._has_sharp is None:
            self._has_sharp = has_sharp
        elif has_sharp != self._has_sharp:
            raise EventFormatError(f'{self.path}: sample {self.count} {"has" if has_sharp else "lacks"} a sharp '
                                   'frame unlike the earlier samples (give sharp frames for all samples or none).')
        i = self.count
        self._put('images', f'image{i:09d}', frame)
        if has_sharp:
            sharp = np.asarray(sharp)
            if sharp.shape != frame.shape or sharp.dtype != np.uint8:
                raise EventFormatError(f'{self.path}: sharp frame {i} is {sharp.dtype} {sharp.shape}; expected uint8 '
                                       f'{frame.shape} like the blurry frame.')
            self._put('sharp_images', f'image{i:09d}', sharp)
        self._put('voxels', f'voxel{i:09d}', voxel)
        self._put('masks', f'mask{i:09d}', mask)
        self.count += 1

    def close(self):
        """Finishes the file and renames it to its final name."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        os.replace(self.tmp, self.path)

    def abort(self):
        """Closes and deletes the temporary file (the final name is left untouched)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


def write_efnet_h5(path, frames, sharp_frames, voxels, masks, sensor_resolution):
    """Writes a whole EFNet processed h5 file atomically.

    Args:
        path (str | os.PathLike): Output file.
        frames (Sequence[np.ndarray]): uint8 (C, H, W) blurry frames, channel-first, stored (BGR) order.
        sharp_frames (Sequence[np.ndarray] | None): Ground-truth frames like ``frames``, or None / empty.
        voxels (Sequence[np.ndarray]): (C_ev, H, W) un-normalised SCER per frame.
        masks (Sequence[np.ndarray]): Event masks per frame (see :func:`efnet_mask`).
        sensor_resolution (tuple[int, int]): (H, W).
    """
    frames, voxels, masks = list(frames), list(voxels), list(masks)
    sharp_frames = list(sharp_frames) if sharp_frames is not None else []
    counts = {'frames': len(frames), 'voxels': len(voxels), 'masks': len(masks)}
    if sharp_frames:
        counts['sharp_frames'] = len(sharp_frames)
    if len(set(counts.values())) != 1:
        raise ValueError(f'write_efnet_h5 {os.fspath(path)}: every list needs one entry per frame, got {counts}.')
    with EFNetH5Writer(path, sensor_resolution) as writer:
        for i, (frame, voxel, mask) in enumerate(zip(frames, voxels, masks)):
            writer.add(frame, voxel, mask, sharp_frames[i] if sharp_frames else None)
