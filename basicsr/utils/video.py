"""MP4 videos with OpenCV: a frame-by-frame writer that never leaves a half-written file, the side-by-side frame of
a deblurred recording (blurry | events | sharp) and a reader of a video's frame count and size.

Example::

    with Mp4Writer('results/rec/side_by_side.mp4', fps=10) as video:
        for k, (blurry, events, sharp) in enumerate(frames):
            video.add(side_by_side_frame(blurry, events, sharp, f'frame {k}', 'EFNet'))
"""
import os

import cv2
import numpy as np

from basicsr.utils.img_util import make_panel
from basicsr.utils.atomic_writer import AtomicWriter

__all__ = ['Mp4Writer', 'side_by_side_frame', 'read_video_info']

FOURCC = 'mp4v'  # MPEG-4 part 2: encoded by every OpenCV build, including opencv-python-headless's own FFmpeg


class Mp4Writer(AtomicWriter):
    """Writes an MP4 file frame by frame to a temporary name in the target folder, renamed on :meth:`close`.

    The first frame fixes the size; every later frame must have the same (H, W), or :meth:`add` raises. MPEG-4
    needs even sides, so a frame of odd height or width gets one white row or column at the bottom or right. Used
    as a context manager, an exception inside the block removes the temporary file and leaves an earlier file at
    ``path`` as it was.

    Args:
        path (str | os.PathLike): Output ``.mp4`` file (its folder is created).
        fps (float): Frames per second. Default: 10.

    Raises:
        ValueError: For a path not ending in ``.mp4`` or a frame rate that is not a positive number.
    """

    def __init__(self, path, fps=10.0):
        self.path = os.fspath(path)
        if not self.path.lower().endswith('.mp4'):
            raise ValueError(f'video {self.path}: expected a file name ending in .mp4')
        try:
            self.fps = float(fps)
        except (TypeError, ValueError):
            self.fps = float('nan')
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f'video {self.path}: fps must be a positive number, got {fps!r}')
        folder = os.path.dirname(os.path.abspath(self.path))
        # OpenCV picks the container from the extension, so the temporary name ends in .mp4 too
        self.tmp_path = os.path.join(folder, f'.{os.path.basename(self.path)[:-4]}.tmp{os.getpid()}.mp4')
        self.frames = 0
        self.size = None  # (H, W) of the frames given
        self._writer = None

    def add(self, frame):
        """Appends one frame.

        Args:
            frame (np.ndarray): uint8 (H, W, 3) BGR, or (H, W) / (H, W, 1) gray.

        Raises:
            ValueError: For a frame that is not uint8 (H, W[, 1 | 3]) or whose size differs from the first frame's.
            OSError: When OpenCV cannot open an MP4 writer at the temporary path.
        """
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3)):
            raise ValueError(f'video {self.path}: frame {self.frames} must be uint8 (H, W, 3) BGR or (H, W) gray, '
                             f'got {frame.dtype} {frame.shape}')
        if frame.ndim == 2 or frame.shape[2] == 1:
            frame = cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
        if self.size is None:
            self._open(frame.shape[:2])
        elif frame.shape[:2] != self.size:
            raise ValueError(f'video {self.path}: frame {self.frames} is {frame.shape[0]}x{frame.shape[1]} but the '
                             f'first frame was {self.size[0]}x{self.size[1]}; every frame of a video needs one size')
        pad_h, pad_w = self.size[0] % 2, self.size[1] % 2
        if pad_h or pad_w:
            frame = cv2.copyMakeBorder(frame, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        self._writer.write(np.ascontiguousarray(frame))
        self.frames += 1

    def _open(self, size):
        os.makedirs(os.path.dirname(self.tmp_path), exist_ok=True)
        height, width = size[0] + size[0] % 2, size[1] + size[1] % 2
        writer = cv2.VideoWriter(self.tmp_path, cv2.VideoWriter_fourcc(*FOURCC), self.fps, (width, height))
        if not writer.isOpened():
            self._remove_tmp()
            raise OSError(f'video {self.path}: OpenCV cannot write MP4 ({FOURCC}) to {self.tmp_path}')
        self._writer, self.size = writer, tuple(size)

    def close(self):
        """Finishes the file and renames it to ``path`` (replacing an earlier file).

        Returns:
            str: The path written.

        Raises:
            ValueError: When no frame was added (nothing is written).
        """
        if self._writer is None:
            raise ValueError(f'video {self.path}: no frames were added; nothing written')
        self._writer.release()
        self._writer = None
        try:
            os.replace(self.tmp_path, self.path)
        except BaseException:
            self._remove_tmp()
            raise
        return self.path

    def abort(self):
        """Drops the video: releases the writer and removes the temporary file (idempotent)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._remove_tmp()

    def _remove_tmp(self):
        if os.path.exists(self.tmp_path):
            os.remove(self.tmp_path)


def side_by_side_frame(blurry, events, sharp, frame_label, sharp_label='sharp'):
    """One frame of a side-by-side video: blurry | events | sharp, captioned, under a line naming the frame.

    Args:
        blurry (np.ndarray): The blurry frame as read (BGR or gray; uint8, uint16 or float in [0, 1]).
        events (np.ndarray): The event picture (uint8 BGR, e.g. ``events`` of an ``infer.py`` result).
        sharp (np.ndarray): The deblurred frame (same channel order as ``blurry``).
        frame_label (str): The line above the frame, e.g. ``'frame 12  t = 0.480 s'``.
        sharp_label (str): Caption of the sharp tile, e.g. the method. Default: ``'sharp'``.

    Returns:
        np.ndarray: uint8 (H + 36, W_total, 3) BGR; the same size for frames of the same size.
    """
    return make_panel([blurry, events, sharp], ['blurry', 'events', sharp_label], title=frame_label)


def read_video_info(path):
    """Frame count, size and frame rate of a video file, as OpenCV reads it.

    Args:
        path (str | os.PathLike): The video.

    Returns:
        dict: ``frames`` (int), ``height``, ``width`` (int), ``fps`` (float).

    Raises:
        OSError: When OpenCV cannot open the file.
    """
    capture = cv2.VideoCapture(os.fspath(path))
    try:
        if not capture.isOpened():
            raise OSError(f'video {os.fspath(path)}: OpenCV cannot open it')
        return {'frames': int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
                'height': int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                'width': int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), 'fps': float(capture.get(cv2.CAP_PROP_FPS))}
    finally:
        capture.release()
