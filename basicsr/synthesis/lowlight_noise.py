"""Low-light image noise of the synthetic low-light deblurring data (spec lowlight.md §10.10).

Multiplicative Gaussian noise (standard deviation proportional to the value), in two domains for colour images: on
an RGGB Bayer mosaic that is 8-bit quantised and demosaiced, and directly on the image; the two are mixed, then a
third multiplicative "quantisation" noise and an 8-bit quantisation follow. Gray (APS) images get the image-domain
noise only. Parameters are drawn per sample from the sample's ``numpy.random.Generator``.
"""

import cv2
import numpy as np

__all__ = ['sample_noise_params', 'bayer_mosaic', 'add_rgb_noise', 'add_aps_noise']


def sample_noise_params(rng):
    """Draw one sample's noise parameters (order: sigma1, sigma2, sigma3, w).

    Args:
        rng (numpy.random.Generator): Random generator.

    Returns:
        dict: ``sigma1`` (Bayer), ``sigma2`` (image), ``sigma3`` (quantisation) in U(0.01, 0.02) and the Bayer
        weight ``w`` in U(0.65, 0.75).
    """
    sigma1 = float(rng.uniform(0.01, 0.02))
    sigma2 = float(rng.uniform(0.01, 0.02))
    sigma3 = float(rng.uniform(0.01, 0.02))
    weight = float(rng.uniform(0.65, 0.75))
    return {'sigma1': sigma1, 'sigma2': sigma2, 'sigma3': sigma3, 'w': weight}


def bayer_mosaic(rgb):
    """RGGB Bayer mosaic: R at (even, even), G at (even, odd) and (odd, even), B at (odd, odd).

    Args:
        rgb (ndarray): (H, W, 3) image in RGB order.

    Returns:
        ndarray: (H, W) mosaic of the same dtype.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'bayer_mosaic: expected an (H, W, 3) RGB image, got shape {rgb.shape}')
    mosaic = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    mosaic[0::2, 0::2] = rgb[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = rgb[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = rgb[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return mosaic


def _multiplicative(x, sigma, rng):
    """``x + sigma * x * N(0, 1)`` computed as ``x * (1 + sigma * N)`` in one new float32 array."""
    out = rng.standard_normal(x.shape, dtype=np.float32)
    out *= sigma
    out += 1
    out *= x
    return out


def _quantise(x, sigma3, rng, rounding):
    x = _multiplicative(np.clip(x, 0, 1), sigma3, rng)
    np.clip(x, 0, 1, out=x)
    x *= 255
    if rounding == 'floor':
        np.floor(x, out=x)
    else:
        np.rint(x, out=x)
    x /= 255
    return x


def _check_rounding(rounding):
    if rounding not in ('floor', 'round'):
        raise ValueError(f"rounding must be 'floor' (reference) or 'round', got {rounding!r}")


def add_rgb_noise(clean, params, rng, rounding='floor'):
    """Noisy low-light version of a clean (blurry) RGB image.

    Draw order: Bayer-domain normals (H, W), image-domain normals (H, W, 3), quantisation normals (H, W, 3).

    Args:
        clean (ndarray): (H, W, 3) float RGB image in [0, 1] (values above 1 allowed; H, W even).
        params (dict): From :func:`sample_noise_params`.
        rng (numpy.random.Generator): Random generator.
        rounding (str): Final 8-bit quantisation, ``'floor'`` (reference) or ``'round'`` (consistent with the
            rounded clean targets, lowlight.md §13 #10). Default: ``'floor'``.

    Returns:
        ndarray: float32 (H, W, 3) noisy image, multiples of 1/255 in [0, 1].
    """
    _check_rounding(rounding)
    clean = np.asarray(clean, dtype=np.float32)
    mosaic = np.clip(_multiplicative(bayer_mosaic(clean), params['sigma1'], rng), 0, 1)
    mosaic = (mosaic * 255).astype(np.uint8)
    bayer = cv2.cvtColor(mosaic, cv2.COLOR_BAYER_BG2RGB).astype(np.float32) / 255
    image = _multiplicative(clean, params['sigma2'], rng)
    bayer *= params['w']
    image *= 1 - params['w']
    bayer += image
    return _quantise(bayer, params['sigma3'], rng, rounding)


def add_aps_noise(clean, params, rng, rounding='floor'):
    """Noisy low-light version of a clean (blurry) gray APS image (image-domain noise only).

    Draw order: image-domain normals, quantisation normals (both of the image's shape).

    Args:
        clean (ndarray): (H, W) float image in [0, 1] (values above 1 allowed).
        params (dict): From :func:`sample_noise_params`.
        rng (numpy.random.Generator): Random generator.
        rounding (str): ``'floor'`` (reference) or ``'round'``. Default: ``'floor'``.

    Returns:
        ndarray: float32 noisy image, multiples of 1/255 in [0, 1].
    """
    _check_rounding(rounding)
    image = _multiplicative(np.asarray(clean, dtype=np.float32), params['sigma2'], rng)
    return _quantise(image, params['sigma3'], rng, rounding)
