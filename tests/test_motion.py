"""Tests of camera trajectories, patch-wise warping, flow and kernels (basicsr.synthesis.motion)."""

import math

import cv2
import numpy as np
import pytest

from basicsr.synthesis.motion import (base_trajectory, patchwise_trajectory, patchwise_kernel_map, synthesize_blur,
                                   trajectory_flow, trajectory_kernel, warp_subframes)


def test_base_trajectory_geometry():
    rng = np.random.default_rng(0)
    for _ in range(20):
        traj, params = base_trajectory(rng)
        assert traj.shape == (25, ) and traj.dtype == np.complex128
        assert np.all(traj.real > 0) and np.all(traj.imag > 0)
        assert np.all(traj.real < 45) and np.all(traj.imag < 45)
        assert 31.2 <= params['arc_len'] <= 36.0 and math.pi / 6 <= params['theta_c'] <= math.pi
        steps = np.abs(np.diff(traj))
        np.testing.assert_allclose(steps, steps[0], rtol=1e-9)  # equally spaced in angle on a circle
        radius = params['arc_len'] / params['theta_c']
        np.testing.assert_allclose(steps[0], 2 * radius * math.sin(params['theta_c'] / 48), rtol=1e-9)
        assert traj[0].real == round(traj[0].real) and traj[0].imag == round(traj[0].imag)


def test_trajectories_are_seeded():
    a, pa = base_trajectory(np.random.default_rng([3, 1]))
    b, pb = base_trajectory(np.random.default_rng([3, 1]))
    c, _ = base_trajectory(np.random.default_rng([3, 2]))
    np.testing.assert_array_equal(a, b)
    assert pa == pb and not np.array_equal(a, c)


def test_patchwise_trajectory_adds_constant_velocity():
    rng = np.random.default_rng(1)
    base, _ = base_trajectory(rng)
    traj, params = patchwise_trajectory(base, rng)
    assert traj.shape == (16, 20, 25)
    np.testing.assert_allclose(traj[..., 0], base[0])
    np.testing.assert_allclose(traj[params['r0'], params['c0']], base)  # the z-centre patch follows the base
    extra = traj - base
    velocity = extra[..., 1:2]
    np.testing.assert_allclose(extra, velocity * np.arange(25), atol=1e-9)
    dist = np.hypot(np.arange(16)[:, None] - params['r0'], np.arange(20)[None, :] - params['c0'])
    scale = np.hypot(params['s_t'], params['s_r'] * math.tan(params['phi_r']))
    np.testing.assert_allclose(np.abs(velocity[..., 0]), scale * dist, atol=1e-9)
    assert np.all((traj.real > 0) & (traj.real < 45) & (traj.imag > 0) & (traj.imag < 45))


def small_traj(seed=0, rows=3, cols=4, num=5):
    rng = np.random.default_rng(seed)
    steps = rng.uniform(-1.5, 1.5, (rows, cols, num)) + 1j * rng.uniform(-1.5, 1.5, (rows, cols, num))
    steps[..., 0] = 10 + 10j
    return np.cumsum(steps, axis=-1)


def test_warp_matches_per_patch_warp_affine():
    rng = np.random.default_rng(2)
    image = cv2.GaussianBlur(rng.random((36, 48, 3)).astype(np.float32) * 3, (5, 5), 1.5)
    traj = small_traj()
    frames = list(warp_subframes(image, traj))
    np.testing.assert_array_equal(frames[0], image)
    for k in range(1, traj.shape[-1]):
        ref = np.zeros_like(image)
        for r in range(3):
            for c in range(4):
                d = traj[r, c, k] - traj[r, c, 0]
                mat = np.float32([[1, 0, d.real], [0, 1, -d.imag]])
                warped = cv2.warpAffine(image, mat, (48, 36), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                ref[r * 12:(r + 1) * 12, c * 12:(c + 1) * 12] = warped[r * 12:(r + 1) * 12, c * 12:(c + 1) * 12]
        np.testing.assert_allclose(frames[k], ref, atol=2e-2)


def test_content_moves_by_re_minus_im():
    image = np.zeros((24, 24), np.float32)
    image[10, 8] = 1.0
    traj = np.zeros((1, 1, 3), complex)
    traj[0, 0] = [5 + 5j, 8 + 4j, 6 + 7j]  # displacements (3, 1) and (1, -2) in (dx, dy)
    frames = list(warp_subframes(image, traj))
    assert np.unravel_index(frames[1].argmax(), frames[1].shape) == (11, 11)
    assert np.unravel_index(frames[2].argmax(), frames[2].shape) == (8, 9)
    blur, kept = synthesize_blur(image, traj, keep_frames=True)
    np.testing.assert_allclose(blur, np.mean(frames, axis=0), atol=1e-6)
    np.testing.assert_array_equal(kept[0], image)


def test_blur_keeps_values_above_one():
    image = np.full((12, 16), 3.0, np.float32)
    blur, _ = synthesize_blur(image, small_traj(rows=1, cols=1))
    np.testing.assert_allclose(blur, 3.0, atol=1e-5)


def test_flow_is_piecewise_constant_content_motion():
    traj = small_traj(num=7)
    flow = trajectory_flow(traj, 36, 48)
    assert flow.shape == (36, 48, 4) and flow.dtype == np.float32
    r, c = 2, 1
    first, second = traj[r, c, 3] - traj[r, c, 0], traj[r, c, 6] - traj[r, c, 3]
    block = flow[r * 12:(r + 1) * 12, c * 12:(c + 1) * 12]
    np.testing.assert_allclose(block, np.broadcast_to([first.real, -first.imag, second.real, -second.imag],
                                                      block.shape), rtol=1e-6)
    with pytest.raises(ValueError, match='divisible'):
        trajectory_flow(traj, 35, 48)


def test_kernel_splat_flip_and_map():
    traj = np.array([2 + 3j, 3 + 3j, 4.5 + 3j])
    kernel = trajectory_kernel(traj, 8)
    assert kernel.shape == (8, 8) and abs(kernel.sum() - 1) < 1e-6
    assert np.count_nonzero(kernel.sum(axis=1)) == 1
    assert kernel[8 - 1 - 3].sum() == pytest.approx(1.0)  # row y=3 lands on row 4 after the vertical flip
    np.testing.assert_allclose(kernel[4, [2, 3, 4, 5]], [1 / 3, 1 / 3, 1 / 6, 1 / 6], atol=1e-6)
    grid = np.stack([[traj, traj + 1], [traj + 1j, traj]])
    kmap = patchwise_kernel_map(grid, 8)
    assert kmap.shape == (16, 16)
    np.testing.assert_allclose(kmap[8:, 8:], kernel)
    np.testing.assert_allclose(kmap[:8, 8:], trajectory_kernel(traj + 1, 8))
