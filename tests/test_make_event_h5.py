"""scripts/data_preparation/make_event_h5.py: raw event h5 → EFNet processed h5, and the --simulate mode."""
import importlib.util
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from basicsr.data.h5_image_dataset import H5ImageDataset
from basicsr.events import EventStream, Frame, event_mask, scer, write_event_h5
from basicsr.events.efnet_h5 import efnet_tmp_path, write_efnet_h5
from basicsr.events.stream import EventFormatError

H, W = 32, 48
SCRIPT = Path(__file__).resolve().parents[1] / 'scripts' / 'data_preparation' / 'make_event_h5.py'


@pytest.fixture(scope='module')
def mod():
    spec = importlib.util.spec_from_file_location('make_event_h5', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules['make_event_h5'] = module  # worker processes find the task functions by module name
    spec.loader.exec_module(module)
    return module


def _raw(path, num_imgs=5, gray=False, sharp=True, exposure=True, seed=0, height=H, n_events=3000):
    """A synthetic raw h5: random events over [0, 1) s, frames at 0.1 + 0.2 i with exposure +-0.05 s."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 1, n_events))
    t[100:110] = t[100]  # ties
    stream = EventStream(rng.integers(0, W, n_events).astype(np.uint16),
                         rng.integers(0, height, n_events).astype(np.uint16), t,
                         np.where(rng.random(n_events) < 0.5, 1, -1).astype(np.int8), height, W)
    shape = (height, W) if gray else (height, W, 3)
    frames, sharps = [], []
    for i in range(num_imgs):
        ts = 0.1 + 0.2 * i
        exp = (ts - 0.05, ts + 0.05) if exposure else (None, None)
        frames.append(Frame(rng.integers(0, 256, shape, dtype=np.uint8), ts, *exp))
        sharps.append(Frame(rng.integers(0, 256, shape, dtype=np.uint8), ts))
    write_event_h5(path, stream, frames=frames, sharp_frames=sharps if sharp else ())
    return stream, frames, sharps


def _load(path):
    with h5py.File(path, 'r') as f:
        n = len(f['images'])
        out = {g: [f[f'{g}/{p}{i:09d}'][()] for i in range(n)] for g, p in
               (('images', 'image'), ('voxels', 'voxel'), ('masks', 'mask')) if g in f}
        if 'sharp_images' in f:
            out['sharp_images'] = [f[f'sharp_images/image{i:09d}'][()] for i in range(n)]
        out['sensor_resolution'] = list(f.attrs['sensor_resolution'])
        out['sizes'] = {k: list(f[f'voxels/voxel{k:09d}'].attrs['size']) for k in range(n)}
    return out


def _dataset(folder, **kw):
    opt = {'name': 't', 'dataroot': str(folder), 'norm_voxel': False, 'return_mask': True, **kw}
    return H5ImageDataset(opt)


def test_gopro_windows_match_direct_scer(mod, tmp_path):
    stream, frames, sharps = _raw(tmp_path / 'raw' / 'seqA.h5')
    out = tmp_path / 'out'
    res = mod.main(['--input', str(tmp_path / 'raw'), '--output', str(out), '--no-progress'])
    assert [r['seq'] for r in res] == ['seqA'] and res[0]['samples'] == 3
    data = _load(out / 'seqA.h5')
    assert len(data['images']) == 3 and data['sensor_resolution'] == [H, W]
    ts = [f.timestamp for f in frames]
    for i in range(3):
        raw_i = i + 1
        t0, t1 = (ts[raw_i - 1] + ts[raw_i]) / 2, (ts[raw_i] + ts[raw_i + 1]) / 2
        sel = (stream.t >= t0) & (stream.t < t1)
        expected = scer(stream.x[sel], stream.y[sel], stream.t[sel], stream.p[sel], 6, H, W)
        assert np.count_nonzero(expected)
        np.testing.assert_array_equal(data['voxels'][i], expected)
        assert data['voxels'][i].dtype == np.float32 and data['sizes'][i] == [6, H, W]
        np.testing.assert_array_equal(data['masks'][i], event_mask(expected)[None] * 255)
        assert data['masks'][i].dtype == np.uint8 and data['masks'][i].shape == (1, H, W)
        np.testing.assert_array_equal(data['images'][i], frames[raw_i].image.transpose(2, 0, 1))
        np.testing.assert_array_equal(data['sharp_images'][i], sharps[raw_i].image.transpose(2, 0, 1))
    ds = _dataset(out)
    assert len(ds) == 5 - 2
    item = ds[1]
    assert item['frame'].shape == (3, H, W) and item['voxel'].shape == (6, H, W) and item['mask'].shape == (1, H, W)
    np.testing.assert_allclose(item['frame_gt'].numpy(), sharps[2].image.transpose(2, 0, 1) / 255.0, atol=1e-6)

    mod.main(['--input', str(tmp_path / 'raw'), '--output', str(tmp_path / 'gray'), '--channels', '1',
              '--no-progress'])
    gray = _load(tmp_path / 'gray' / 'seqA.h5')
    assert gray['images'][0].shape == (1, H, W)
    np.testing.assert_array_equal(gray['images'][0][0], cv2.cvtColor(frames[1].image, cv2.COLOR_BGR2GRAY))


def test_exposure_windows_crop_gray_keep_middle(mod, tmp_path):
    stream, frames, _ = _raw(tmp_path / 'reblur.h5', num_imgs=4, gray=True, sharp=False, height=34)
    out = tmp_path / 'out'
    mod.main(['--input', str(tmp_path / 'reblur.h5'), '--output', str(out), '--window', 'exposure', '--crop-rows',
              '32', '--keep-middle', '--no-progress'])
    data = _load(out / 'reblur.h5')
    assert len(data['images']) == 4 and 'sharp_images' not in data and data['sensor_resolution'] == [32, W]
    for i, frame in enumerate(frames):
        sel = (stream.t >= frame.exposure_start) & (stream.t <= frame.exposure_end)
        full = scer(stream.x[sel], stream.y[sel], stream.t[sel], stream.p[sel], 6, 34, W, keep_middle=True)
        assert full.shape == (7, 34, W) and not np.any(full[3])
        np.testing.assert_array_equal(data['voxels'][i], full[:, :32])
        np.testing.assert_array_equal(data['masks'][i][0], event_mask(full[:, :32]) * 255)
        assert data['images'][i].shape == (3, 32, W)
        for c in range(3):
            np.testing.assert_array_equal(data['images'][i][c], frame.image[:32])
    ds = _dataset(out, return_gt_frame=False)
    assert len(ds) == 4 and ds[3]['voxel'].shape == (7, 32, W)


def test_add_noise_seeded_and_mask_order(mod, tmp_path):
    _raw(tmp_path / 'raw' / 'seq.h5', num_imgs=4)
    base = ['--input', str(tmp_path / 'raw'), '--window', 'exposure', '--no-progress']
    runs = {}
    for name, extra in (('clean', []), ('a', ['--add-noise', '--seed', '3']), ('b', ['--add-noise', '--seed', '3']),
                        ('c', ['--add-noise', '--seed', '4']), ('off', ['--no-add-noise']),
                        ('before', ['--add-noise', '--seed', '3', '--mask-order', 'before'])):
        mod.main(base + ['--output', str(tmp_path / name)] + extra)
        runs[name] = _load(tmp_path / name / 'seq.h5')
    for i in range(4):
        clean, noisy = runs['clean']['voxels'][i], runs['a']['voxels'][i]
        np.testing.assert_array_equal(noisy, runs['b']['voxels'][i])
        assert not np.array_equal(noisy, runs['c']['voxels'][i])
        np.testing.assert_array_equal(runs['off']['voxels'][i], clean)
        changed = np.mean(noisy != clean)
        assert 0.02 < changed < 0.1  # about 5 % of the elements
        np.testing.assert_array_equal(runs['a']['masks'][i][0], event_mask(noisy) * 255)
        np.testing.assert_array_equal(runs['before']['voxels'][i], noisy)
        np.testing.assert_array_equal(runs['before']['masks'][i][0], event_mask(clean) * 255)
        assert runs['a']['masks'][i].sum() > runs['before']['masks'][i].sum()


def test_add_noise_flag_parsing(mod):
    assert mod.parse_args(['--input', 'x', '--output', 'y']).add_noise is False
    assert mod.parse_args(['--input', 'x', '--output', 'y', '--add-noise']).add_noise is True
    assert mod.parse_args(['--input', 'x', '--output', 'y', '--no-add-noise']).add_noise is False
    with pytest.raises(SystemExit):
        mod.parse_args(['--input', 'x', '--output', 'y', '--add-noise', 'False'])


def test_atomic_write_and_skip_existing(mod, tmp_path, monkeypatch):
    _raw(tmp_path / 'raw' / 'seq.h5')
    out = tmp_path / 'out'
    real_scer = mod.scer
    calls = []

    def failing_scer(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError('simulated failure')
        return real_scer(*args, **kwargs)

    monkeypatch.setattr(mod, 'scer', failing_scer)
    with pytest.raises(RuntimeError, match='simulated failure'):
        mod.main(['--input', str(tmp_path / 'raw'), '--output', str(out), '--no-progress'])
    assert sorted(p.name for p in out.iterdir()) == []  # neither the final name nor a temporary file
    monkeypatch.setattr(mod, 'scer', real_scer)

    # a temporary file left by a killed run is removed, and the output is made
    stale = Path(efnet_tmp_path(out / 'seq.h5') + '999')
    stale.write_bytes(b'partial')
    res = mod.main(['--input', str(tmp_path / 'raw'), '--output', str(out), '--no-progress'])
    assert not res[0]['skipped'] and not stale.exists()
    mtime = (out / 'seq.h5').stat().st_mtime_ns
    res = mod.main(['--input', str(tmp_path / 'raw'), '--output', str(out), '--no-progress'])
    assert res[0]['skipped'] and (out / 'seq.h5').stat().st_mtime_ns == mtime
    res = mod.main(['--input', str(tmp_path / 'raw'), '--output', str(out), '--no-progress', '--overwrite',
                    '--keep-middle'])
    assert not res[0]['skipped'] and _load(out / 'seq.h5')['voxels'][0].shape == (7, H, W)


def test_workers_give_same_files(mod, tmp_path):
    for k in range(2):
        _raw(tmp_path / 'raw' / f's{k}.h5', seed=k)
    args = ['--input', str(tmp_path / 'raw'), '--add-noise', '--no-progress']
    mod.main(args + ['--output', str(tmp_path / 'one')])
    mod.main(args + ['--output', str(tmp_path / 'two'), '--workers', '2'])
    for k in range(2):
        a, b = _load(tmp_path / 'one' / f's{k}.h5'), _load(tmp_path / 'two' / f's{k}.h5')
        for va, vb in zip(a['voxels'], b['voxels']):
            np.testing.assert_array_equal(va, vb)
    assert len(_dataset(tmp_path / 'two')) == 2 * 3


def test_write_efnet_h5_checks_and_atomicity(tmp_path):
    frame = np.zeros((3, H, W), np.uint8)
    voxel = np.zeros((6, H, W), np.float32)
    mask = np.ones((H, W), np.uint8)
    write_efnet_h5(tmp_path / 'a.h5', [frame], None, [voxel], [mask], (H, W))
    data = _load(tmp_path / 'a.h5')
    assert data['masks'][0].max() == 255 and 'sharp_images' not in data
    with pytest.raises(EventFormatError, match=r'b\.h5: voxel 0 has shape'):
        write_efnet_h5(tmp_path / 'b.h5', [frame], [frame], [voxel[:, :-1]], [mask], (H, W))
    with pytest.raises(ValueError, match='one entry per frame'):
        write_efnet_h5(tmp_path / 'c.h5', [frame, frame], None, [voxel], [mask], (H, W))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.h5']


def test_bad_inputs_name_file_and_key(mod, tmp_path):
    with pytest.raises(FileNotFoundError, match='nope'):
        mod.main(['--input', str(tmp_path / 'nope'), '--output', str(tmp_path / 'o'), '--no-progress'])
    bad = tmp_path / 'noevents.h5'
    with h5py.File(bad, 'w') as f:
        f.create_dataset('images/image000000000', data=np.zeros((H, W), np.uint8))
    with pytest.raises(EventFormatError, match=r'noevents\.h5.*"events"'):
        mod.main(['--input', str(bad), '--output', str(tmp_path / 'o'), '--no-progress'])
    _raw(tmp_path / 'noexp.h5', exposure=False)
    with pytest.raises(EventFormatError, match=r'noexp\.h5.*images/image000000000.*exposure_start'):
        mod.main(['--input', str(tmp_path / 'noexp.h5'), '--output', str(tmp_path / 'o'), '--window', 'exposure',
                  '--no-progress'])
    _raw(tmp_path / 'short.h5', num_imgs=2)
    with pytest.raises(EventFormatError, match=r'short\.h5.*at least 3 images'):
        mod.main(['--input', str(tmp_path / 'short.h5'), '--output', str(tmp_path / 'o'), '--no-progress'])
    with pytest.raises(ValueError, match='crop-rows 40'):
        mod.main(['--input', str(tmp_path / 'noexp.h5'), '--output', str(tmp_path / 'o'), '--crop-rows', '40',
                  '--no-progress'])
    with pytest.raises(FileNotFoundError, match='no sub-folder'):
        mod.main(['--simulate', '--input', str(tmp_path), '--output', str(tmp_path / 'o2'), '--no-progress'])
    assert not list((tmp_path / 'o').glob('*.h5'))


def _png_sequences(root, num_seqs=2, num_frames=9):
    """Tiny moving-bar PNG sequences; colour for the first, gray for the second."""
    seqs = {}
    for s in range(num_seqs):
        folder = root / f'seq{s}'
        folder.mkdir(parents=True)
        frames = []
        for i in range(num_frames):
            img = np.full((H, W), 40, np.uint8)
            img[:, 3 * i + 2 * s:3 * i + 2 * s + 6] = 220
            img = img + (np.arange(W, dtype=np.uint8)[None] % 7)
            if s == 0:
                img = np.stack([img, img // 2 + 10, 255 - img], axis=-1)
            cv2.imwrite(str(folder / f'{i:06d}.png'), img)
            frames.append(img)
        seqs[f'seq{s}'] = frames
    return seqs


def test_simulate_writes_raw_and_processed(mod, tmp_path):
    seqs = _png_sequences(tmp_path / 'frames')
    out = tmp_path / 'out'
    res = mod.main(['--simulate', '--input', str(tmp_path / 'frames'), '--output', str(out), '--blur-frames', '3',
                    '--fps', '100', '--no-progress', '--workers', '2'])
    assert [r['seq'] for r in res] == ['seq0', 'seq1'] and all(r['samples'] == 3 for r in res)
    for name, frames in seqs.items():
        raw = out / 'raw' / f'{name}.h5'
        with h5py.File(raw, 'r') as f:
            assert f['events/ts'].shape[0] > 0 and f.attrs['sensor_resolution'].tolist() == [H, W]
            for k in range(3):
                img = f[f'images/image{k:09d}']
                group = [frames[j] for j in range(3 * k, 3 * k + 3)]
                expected = np.rint(np.mean(np.stack(group).astype(np.float64), axis=0)).astype(np.uint8)
                np.testing.assert_array_equal(img[()], expected)
                np.testing.assert_array_equal(f[f'sharp_images/image{k:09d}'][()], frames[3 * k + 1])
                assert img.attrs['timestamp'] == pytest.approx((3 * k + 1) / 100)
                assert img.attrs['exposure_start'] == pytest.approx(3 * k / 100 - 0.005)
                assert img.attrs['exposure_end'] == pytest.approx((3 * k + 2) / 100 + 0.005)
        data = _load(out / f'{name}.h5')
        assert len(data['images']) == 3 and data['voxels'][0].shape == (6, H, W)
        assert any(np.count_nonzero(v) for v in data['voxels'])
        mid = frames[4]
        mid_chw = mid.transpose(2, 0, 1) if mid.ndim == 3 else np.repeat(mid[None], 3, axis=0)
        np.testing.assert_array_equal(data['sharp_images'][1], mid_chw)
    ds = _dataset(out)
    assert len(ds) == 6 and ds[4]['frame'].shape == (3, H, W)
    # reproducible per sequence seed; rerun skips
    again = mod.main(['--simulate', '--input', str(tmp_path / 'frames'), '--output', str(tmp_path / 'again'),
                      '--blur-frames', '3', '--fps', '100', '--no-progress'])
    assert all(not r['skipped'] for r in again)
    with h5py.File(out / 'raw' / 'seq0.h5', 'r') as f1, h5py.File(tmp_path / 'again' / 'raw' / 'seq0.h5', 'r') as f2:
        np.testing.assert_array_equal(f1['events/ts'][()], f2['events/ts'][()])
        np.testing.assert_array_equal(f1['events/xs'][()], f2['events/xs'][()])
    res = mod.main(['--simulate', '--input', str(tmp_path / 'frames'), '--output', str(out), '--blur-frames', '3',
                    '--fps', '100', '--no-progress'])
    assert all(r['skipped'] for r in res)


def test_linear_intensity_is_documented_srgb(mod):
    img = np.array([[0, 10, 128, 255]], np.uint8)
    lin = mod.linear_intensity(img)
    v = img / 255.0
    np.testing.assert_allclose(lin, 255 * np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055)**2.4))
    np.testing.assert_allclose(mod.linear_intensity(img, 'none'), img.astype(np.float64))
    bgr = np.zeros((1, 1, 3), np.uint8)
    bgr[..., 2] = 255
    assert mod.linear_intensity(bgr, 'none')[0, 0] == pytest.approx(0.299 * 255)
