"""Camera motion for synthetic blur (spec lowlight.md §10.2-10.7).

Trajectories live in the complex plane, in pixels of the frame they are generated for (x = real part, y = imaginary
part pointing up). A base trajectory is a circular arc of ``samples`` points; a patch-wise trajectory adds to it a
per-patch constant velocity that approximates camera translation and rotation about the optical axis. Sub-frame
``k`` moves the content of every patch by ``traj[k] - traj[0]`` (``dx = Re``, ``dy = -Im``); the blurry image is
the mean of the sub-frames and the sharp image is sub-frame 0.

All random draws come from the ``numpy.random.Generator`` passed in.
"""

import math

import cv2
import numpy as np

__all__ = ['base_trajectory', 'patchwise_trajectory', 'warp_subframes', 'synthesize_blur', 'trajectory_flow',
           'trajectory_kernel', 'patchwise_kernel_map']


def _inside(points, canvas, downsampling):
    """Sanity check of the reference: every coordinate in (0, canvas - downsampling)."""
    upper = canvas - downsampling
    return bool(np.all((points.real > 0) & (points.real < upper) & (points.imag > 0) & (points.imag < upper)))


def base_trajectory(rng, canvas=48, samples=25, downsampling=3, max_tries=10000):
    """Random circular-arc camera trajectory (§10.2), regenerated until it passes the sanity check.

    Draw order per try: clockwise flag, arc length, central angle, position angle.

    Args:
        rng (numpy.random.Generator): Random generator.
        canvas (int | float): Canvas (patch) size in pixels; 48 for 768×960 frames with a 16×20 patch grid.
        samples (int): Number of trajectory points (sub-frames). Default: 25.
        downsampling (int): Factor between the frame and the APS frame; also the safety margin. Default: 3.
        max_tries (int): Give up after this many rejected tries. Default: 10000.

    Returns:
        tuple[ndarray, dict]: complex128 (samples,) trajectory and the drawn parameters (``clockwise``, ``arc_len``,
        ``theta_c``, ``theta_p``, ``tries``).
    """
    if samples < 2:
        raise ValueError(f'base_trajectory: samples must be >= 2, got {samples}')
    k = np.arange(samples)
    for tries in range(1, max_tries + 1):
        clockwise = int(rng.integers(0, 2))
        arc_len = canvas * 0.7 + canvas * rng.uniform(-0.05, 0.05)
        theta_c = rng.uniform(math.pi / 6, math.pi)
        theta_p = rng.uniform(0, 2 * math.pi)
        radius = arc_len / theta_c
        if clockwise:
            start, step = radius * np.exp(1j * (theta_p + theta_c)), -theta_c / (samples - 1)
        else:
            start, step = radius * np.exp(1j * theta_p), theta_c / (samples - 1)
        pts = start * np.exp(1j * k * step)
        pts = pts - complex(pts.real.min(), pts.imag.min()) + (1 + 1j)
        pts = pts - complex(pts[0].real % 1, pts[0].imag % 1)
        pts = pts + complex(math.ceil((canvas - pts.real.max()) / 2), math.ceil((canvas - pts.imag.max()) / 2))
        if _inside(pts, canvas, downsampling):
            params = {'clockwise': clockwise, 'arc_len': float(arc_len), 'theta_c': float(theta_c),
                      'theta_p': float(theta_p), 'tries': tries}
            return pts.astype(np.complex128), params
    raise RuntimeError(f'base_trajectory: no valid trajectory in {max_tries} tries (canvas {canvas})')


def patchwise_trajectory(base, rng, canvas=48, patch_number=(16, 20), downsampling=3, max_tries=10000):
    """Patch-wise trajectories (§10.3): the base trajectory plus a per-patch constant velocity.

    Draw order per try: z-centre row, z-centre column, translation scale, rotation angle, rotation scale.

    Args:
        base (ndarray): complex (S,) base trajectory.
        rng (numpy.random.Generator): Random generator.
        canvas (int | float): Canvas (patch) size in pixels. Default: 48.
        patch_number (tuple[int, int]): Patch grid (rows, columns). Default: (16, 20).
        downsampling (int): Safety margin of the sanity check. Default: 3.
        max_tries (int): Give up after this many rejected tries. Default: 10000.

    Returns:
        tuple[ndarray, dict]: complex128 (rows, cols, S) trajectories and the drawn parameters (``r0``, ``c0``,
        ``s_t``, ``phi_r``, ``s_r``, ``tries``).
    """
    base = np.asarray(base, dtype=np.complex128)
    rows, cols = patch_number
    m = canvas / len(base)
    rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing='ij')
    k = np.arange(len(base))
    for tries in range(1, max_tries + 1):
        r0 = int(rng.integers(0, rows))
        c0 = int(rng.integers(0, cols))
        s_t = rng.uniform(-m / 35, m / 35)
        phi_r = rng.uniform(-math.pi / 4, math.pi / 4)
        s_r = rng.uniform(0, m / 25)
        dist = np.hypot(rr - r0, cc - c0)
        phi = np.arctan2(-(rr - r0), cc - c0)
        delta = (s_t * dist * np.exp(1j * phi) +
                 s_r * math.tan(phi_r) * dist * np.exp(1j * (phi + np.sign(phi_r) * math.pi / 2)))
        traj = base[None, None, :] + delta[..., None] * k
        if _inside(traj, canvas, downsampling):
            params = {'r0': r0, 'c0': c0, 's_t': float(s_t), 'phi_r': float(phi_r), 's_r': float(s_r), 'tries': tries}
            return traj, params
    raise RuntimeError(f'patchwise_trajectory: no valid patch grid in {max_tries} tries (canvas {canvas})')


def _patch_grid(traj, height, width):
    traj = np.asarray(traj)
    if traj.ndim != 3:
        raise ValueError(f'expected patch-wise trajectories (rows, cols, S), got shape {traj.shape}')
    rows, cols = traj.shape[:2]
    if height % rows or width % cols:
        raise ValueError(f'frame {height}x{width} is not divisible by the patch grid {rows}x{cols}')
    return rows, cols, height // rows, width // cols


def _remap_maps(traj, k, height, width):
    """Float ``cv2.remap`` maps of sub-frame k: source = destination - (dx, dy) of the pixel's patch."""
    rows, cols, ph, pw = _patch_grid(traj, height, width)
    disp = traj[..., k] - traj[..., 0]
    map_x = np.empty((rows, ph, cols, pw), dtype=np.float32)
    map_y = np.empty((rows, ph, cols, pw), dtype=np.float32)
    map_x[...] = np.arange(width, dtype=np.float32).reshape(cols, pw) - disp.real.astype(np.float32)[:, None, :, None]
    map_y[...] = (np.arange(height, dtype=np.float32).reshape(rows, ph, 1, 1) +
                  disp.imag.astype(np.float32)[:, None, :, None])
    return map_x.reshape(height, width), map_y.reshape(height, width)


def warp_subframes(image, traj, frames=None, border=cv2.BORDER_REFLECT):
    """Yield the sub-frames of a patch-wise translated image, one ``cv2.remap`` per sub-frame.

    Sub-frame 0 is the image itself; sub-frame k moves each patch's content by ``traj[r, c, k] - traj[r, c, 0]``
    (bilinear, reflected border), the fast equivalent of translating the whole image per patch and copying the patch.

    Args:
        image (ndarray): (H, W) or (H, W, C) float32 image (values above 1 are kept).
        traj (ndarray): complex (rows, cols, S) patch-wise trajectories in pixels of this image.
        frames (Iterable[int] | None): Sub-frame indices to produce; default all.
        border (int): OpenCV border mode. Default: ``cv2.BORDER_REFLECT``.

    Yields:
        ndarray: float32 sub-frames in the order of ``frames``.
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    height, width = image.shape[:2]
    _patch_grid(traj, height, width)
    for k in range(traj.shape[-1]) if frames is None else frames:
        if k == 0:
            yield image.copy()
            continue
        map_x, map_y = _remap_maps(traj, k, height, width)
        yield cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=border)


def synthesize_blur(image, traj, keep_frames=False, border=cv2.BORDER_REFLECT):
    """Blur by box integration of the patch-wise translated sub-frames (§10.4).

    Args:
        image (ndarray): (H, W) or (H, W, C) float32 sharp image (the sub-frame at the start of the exposure).
        traj (ndarray): complex (rows, cols, S) patch-wise trajectories in pixels of this image.
        keep_frames (bool): Also return the stacked sub-frames (S, H, W[, C]). Default: False.
        border (int): OpenCV border mode. Default: ``cv2.BORDER_REFLECT``.

    Returns:
        tuple[ndarray, ndarray | None]: float32 blurry image (mean of the sub-frames) and the sub-frames or None.
    """
    num = traj.shape[-1]
    acc = np.zeros(np.shape(image), dtype=np.float32)
    kept = [] if keep_frames else None
    for frame in warp_subframes(image, traj, border=border):
        acc += frame
        if keep_frames:
            kept.append(frame)
    blur = (acc / num).astype(np.float32)
    return blur, (np.stack(kept) if keep_frames else None)


def trajectory_flow(traj, height, width):
    """Bi-directional ground-truth flow (§10.6), constant per patch.

    Args:
        traj (ndarray): complex (rows, cols, S) patch-wise trajectories in pixels of the flow's frame.
        height (int): Frame height.
        width (int): Frame width.

    Returns:
        ndarray: float32 (H, W, 4): channels 0-1 start→middle, 2-3 middle→end, as (dx, dy) content displacement.
    """
    rows, cols, ph, pw = _patch_grid(traj, height, width)
    mid = (traj.shape[-1] - 1) // 2
    first = traj[..., mid] - traj[..., 0]
    second = traj[..., -1] - traj[..., mid]
    flow = np.stack([first.real, -first.imag, second.real, -second.imag], axis=-1).astype(np.float32)
    return np.repeat(np.repeat(flow, ph, 0), pw, 1)


def trajectory_kernel(traj, size=16):
    """Blur kernel of one trajectory (§10.7): bilinear splat of its points, normalised, flipped vertically.

    Args:
        traj (ndarray): complex (S,) trajectory in pixels (points inside the ``size`` canvas).
        size (int): Kernel size. Default: 16.

    Returns:
        ndarray: float32 (size, size) kernel summing to 1.
    """
    traj = np.asarray(traj).reshape(-1)
    kernel = np.zeros((size, size), dtype=np.float64)
    x, y = traj.real, traj.imag
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    for oy, ox, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy),
                           (1, 1, fx * fy)):
        xi, yi = x0 + ox, y0 + oy
        keep = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size)
        np.add.at(kernel, (yi[keep], xi[keep]), weight[keep])
    total = kernel.sum()
    if total <= 0:
        raise ValueError(f'trajectory_kernel: trajectory lies outside the {size}x{size} canvas')
    return np.flipud(kernel / total).astype(np.float32)


def patchwise_kernel_map(traj, size=16):
    """Tile the kernels of a patch-wise trajectory grid into one map (§10.7).

    Args:
        traj (ndarray): complex (rows, cols, S) trajectories in pixels.
        size (int): Kernel size (the patch size of the map). Default: 16.

    Returns:
        ndarray: float32 (rows·size, cols·size) kernel map.
    """
    rows, cols = traj.shape[:2]
    kernels = np.stack([[trajectory_kernel(traj[r, c], size) for c in range(cols)] for r in range(rows)])
    return kernels.transpose(0, 2, 1, 3).reshape(rows * size, cols * size)
