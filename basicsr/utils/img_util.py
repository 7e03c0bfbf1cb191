# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/utils/img_util.py (Apache-2.0)
"""Image decoding, reading, writing and conversion between numpy images and torch tensors."""
import os
import uuid

import cv2
import numpy as np
import torch

__all__ = ['imfrombytes', 'imread', 'img2tensor', 'tensor2img', 'imwrite', 'to_float_image', 'match_channels',
           'make_panel']

_IMREAD_FLAGS = {'color': cv2.IMREAD_COLOR, 'grayscale': cv2.IMREAD_GRAYSCALE, 'unchanged': cv2.IMREAD_UNCHANGED}


def _imread_flag(flag):
    if flag not in _IMREAD_FLAGS:
        raise ValueError(f'flag must be one of {sorted(_IMREAD_FLAGS)}, got {flag!r}')
    return _IMREAD_FLAGS[flag]


def imfrombytes(content, flag='color', float32=False):
    """Decodes an encoded image (PNG, JPEG, ...) from bytes.

    Args:
        content (bytes): Encoded image bytes.
        flag (str): ``'color'`` (3-channel BGR), ``'grayscale'`` (H, W) or ``'unchanged'``. Default: ``'color'``.
        float32 (bool): Return float32 divided by 255 (uint8 images) or 65535 (uint16 images). Default: False.

    Returns:
        np.ndarray: The image, HWC (BGR channel order) or HW.

    Raises:
        ValueError: If the bytes cannot be decoded.
    """
    buf = np.frombuffer(content, np.uint8)
    img = cv2.imdecode(buf, _imread_flag(flag)) if buf.size else None
    if img is None:
        raise ValueError(f'could not decode image from {len(content)} bytes')
    if float32:
        img = _to_float32(img)
    return img


def _to_float32(img):
    scale = 65535. if img.dtype == np.uint16 else 255.
    return img.astype(np.float32) / np.float32(scale)


def to_float_image(img):
    """Converts an image to float32 in [0, 1] (uint8 / 255, uint16 / 65535, floats kept), (H, W, C).

    Args:
        img (np.ndarray): (H, W) or (H, W, C) image.

    Returns:
        np.ndarray: float32 (H, W, C).
    """
    img = np.asarray(img)
    if img.dtype in (np.uint8, np.uint16):
        out = _to_float32(img)
    else:
        out = img.astype(np.float32)
    return out[:, :, None] if out.ndim == 2 else out


def match_channels(img, channels, name='image'):
    """Gives an (H, W, C) image the channels a network takes: alpha dropped, gray replicated, colour to gray.

    Args:
        img (np.ndarray): (H, W, C) image; colour in OpenCV's BGR order.
        channels (int | None): 1, 3, or None to keep the channels (alpha still dropped).
        name (str): Named in errors. Default: ``'image'``.

    Returns:
        np.ndarray: (H, W, channels) image.

    Raises:
        ValueError: For a channel count that cannot be converted.
    """
    if img.shape[2] == 4:
        img = img[:, :, :3]
    if channels is None or img.shape[2] == channels:
        return img
    if channels == 3 and img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if channels == 1 and img.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2GRAY)[:, :, None]
    raise ValueError(f'{name}: image has {img.shape[2]} channels; expected {channels} (or 1/3/4 to convert)')


def imread(path, flag='color', float32=False):
    """Reads an image file with OpenCV.

    Args:
        path (str | os.PathLike): Image file.
        flag (str): ``'color'``, ``'grayscale'`` or ``'unchanged'``. Default: ``'color'``.
        float32 (bool): Return float32 in [0, 1]. Default: False.

    Returns:
        np.ndarray: The image, HWC (BGR channel order) or HW.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If OpenCV cannot decode the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'image file not found: {path}')
    with open(path, 'rb') as f:
        content = f.read()
    try:
        return imfrombytes(content, flag, float32)
    except ValueError as err:
        raise ValueError(f'could not read image {path}: {err}') from None


def img2tensor(imgs, bgr2rgb=True, float32=True):
    """Converts numpy HWC (or HW) images to torch CHW tensors.

    Args:
        imgs (np.ndarray | list[np.ndarray]): Image(s), HWC or HW.
        bgr2rgb (bool): Swap BGR to RGB for 3-channel images. Default: True.
        float32 (bool): Cast to float32. Default: True.

    Returns:
        torch.Tensor | list[torch.Tensor]: Tensor(s) of shape (C, H, W) (C = 1 for HW input).
    """

    def _convert(img):
        if img.ndim == 2:
            img = img[:, :, None]
        if img.shape[2] == 3 and bgr2rgb:
            img = img[:, :, ::-1]
        tensor = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        return tensor.float() if float32 else tensor

    if isinstance(imgs, list):
        return [_convert(img) for img in imgs]
    return _convert(imgs)


def tensor2img(tensor, rgb2bgr=True, out_type=np.uint8, min_max=(0, 1)):
    """Converts torch tensor(s) to numpy image(s).

    Values are clamped to ``min_max`` and mapped to [0, 1]; for uint8 output they are multiplied by 255 and
    **rounded** (not truncated).

    Args:
        tensor (torch.Tensor | list[torch.Tensor]): Shape (1, C, H, W), (C, H, W) or (H, W); C in {1, 3} (any C
            is accepted and kept; only C = 3 is colour-swapped).
        rgb2bgr (bool): Swap RGB to BGR for 3-channel images. Default: True.
        out_type (type): ``np.uint8`` or ``np.float32``/``np.float64`` (values in [0, 1]). Default: ``np.uint8``.
        min_max (tuple[float, float]): Value range clamped and mapped to [0, 1]. Default: (0, 1).

    Returns:
        np.ndarray | list[np.ndarray]: HWC (or HW for one channel) image(s).

    Raises:
        TypeError: For non-tensor input.
        ValueError: For an unsupported shape.
    """
    if not (torch.is_tensor(tensor) or (isinstance(tensor, list) and all(torch.is_tensor(t) for t in tensor))):
        raise TypeError(f'tensor or list of tensors expected, got {type(tensor)}')
    single = torch.is_tensor(tensor)
    tensors = [tensor] if single else tensor
    results = []
    for t in tensors:
        t = t.detach().float().cpu().clamp(*min_max)
        t = (t - min_max[0]) / (min_max[1] - min_max[0])
        if t.dim() == 4:
            if t.size(0) != 1:
                raise ValueError(f'tensor2img expects one image per call; got batch of {t.size(0)} '
                                 f'(shape {tuple(t.shape)})')
            t = t[0]
        if t.dim() == 3:
            img = t.numpy().transpose(1, 2, 0)
            if img.shape[2] == 1:
                img = img[:, :, 0]
            elif img.shape[2] == 3 and rgb2bgr:
                img = img[:, :, ::-1]
        elif t.dim() == 2:
            img = t.numpy()
        else:
            raise ValueError('tensor2img supports (1, C, H, W), (C, H, W) or (H, W) tensors; '
                             f'got shape {tuple(t.shape)}')
        if out_type == np.uint8:
            img = np.round(img * 255.)
        img = np.ascontiguousarray(img).astype(out_type)
        results.append(img)
    return results[0] if single else results


def imwrite(img, file_path, params=None, auto_mkdir=True):
    """Writes an image atomically: to a temporary name in the same folder, then renamed over ``file_path``.

    Args:
        img (np.ndarray): Image (HWC BGR or HW), uint8/uint16.
        file_path (str | os.PathLike): Destination; the extension selects the encoder.
        params (list | None): OpenCV ``imencode`` parameters. Default: None.
        auto_mkdir (bool): Create the parent folder if needed. Default: True.

    Returns:
        None

    Raises:
        IOError: If OpenCV cannot encode the image or the file cannot be written.
    """
    file_path = os.fspath(file_path)
    folder = os.path.dirname(os.path.abspath(file_path))
    if auto_mkdir:
        os.makedirs(folder, exist_ok=True)
    ext = os.path.splitext(file_path)[1]
    if not ext:
        raise ValueError(f'cannot choose an image encoder: no file extension in {file_path}')
    try:
        ok, buf = cv2.imencode(ext, img, params if params is not None else [])
    except cv2.error as err:
        raise IOError(f'OpenCV could not encode image of shape {getattr(img, "shape", None)} and dtype '
                      f'{getattr(img, "dtype", None)} as {ext} for {file_path}: {err}') from None
    if not ok:
        raise IOError(f'OpenCV could not encode image of shape {getattr(img, "shape", None)} as {ext} for {file_path}')
    # a unique name created with mode 0o666, so the file follows the umask like every other output (mkstemp: 0600)
    tmp_path = os.path.join(folder, f'.{os.path.basename(file_path)}.{uuid.uuid4().hex[:12]}.tmp')
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0), 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(buf.tobytes())
        os.replace(tmp_path, file_path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def _panel_tile(img):
    """uint8 (H, W, 3) copy of a uint8/float [0, 1]/uint16, gray or colour image."""
    img = np.asarray(img)
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float64) * (255. / 65535.)).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(np.round(img.astype(np.float64) * 255.), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def make_panel(tiles, labels=None, gap=4, title=None):
    """Lays images out side by side at the height of the first (e.g. blurry | events | output | sharp).

    Args:
        tiles (list[np.ndarray]): Images in one channel order (uint8, uint16 or float in [0, 1]; gray or colour).
            A tile of another height (e.g. events at 1/3 of an RGB frame) is scaled, nearest neighbour.
        labels (list[str] | None): Caption above each tile. Default: None.
        gap (int): White pixels between tiles. Default: 4.
        title (str | None): A line above the whole panel (e.g. the frame of a video). Default: None.

    Returns:
        np.ndarray: uint8 (H [+ caption] [+ title], W_total, 3).
    """
    parts = [_panel_tile(t) for t in tiles]
    height = parts[0].shape[0]
    out = []
    for k, part in enumerate(parts):
        if part.shape[0] != height:
            width = max(round(part.shape[1] * height / part.shape[0]), 1)
            part = cv2.resize(part, (width, height), interpolation=cv2.INTER_NEAREST)
        if labels is not None:
            part = _caption(part, labels[k])
        if k:
            out.append(np.full((part.shape[0], gap, 3), 255, np.uint8))
        out.append(part)
    panel = np.concatenate(out, axis=1)
    return panel if title is None else _caption(panel, title)


def _caption(image, text):
    """``image`` with an 18-pixel white strip on top holding ``text`` in black."""
    image = cv2.copyMakeBorder(image, 18, 0, 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    cv2.putText(image, str(text), (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return image
