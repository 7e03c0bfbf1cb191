"""basicsr/infer.py: own-data inference equals the dataset path in every event format; bad input fails early."""
import os

import cv2
import h5py
import numpy as np
import pytest
import torch

from basicsr.archs.efnet_arch import EFNet
from basicsr.archs.lowlight_arch import LowLightEventDeblurNet
from basicsr.data.h5_image_dataset import H5ImageDataset
from basicsr.data.lowlight_dataset import LowLightRealDataset
from basicsr.events.edi import edi_deblur
from basicsr.events import (EventFormatError, EventStream, Frame, event_mask, read_aedat4, read_events,
                            read_highrev_events, scer, voxel_grid, write_event_h5, write_highrev_chunk,
                            write_npy_events, write_text_events)
from basicsr.infer import deblur, deblur_file, deblur_recording, main
from basicsr.models.deblur_methods import InferenceError, load_method, recognise_state_dict
from basicsr.models.inference import forward_padded
from basicsr.utils.img_util import tensor2img
from fake_aedat import install_fake_aedat

H, W = 18, 30  # not a multiple of EFNet's 4: exercises padding
EXPOSURES = [(0.02, 0.08), (0.12, 0.18), (0.22, 0.28)]
CAPTION = 18  # rows of the caption above each panel tile (basicsr.utils.img_util.make_panel)


def _stream(rng, h, w, n=4000, t_end_us=300_000):
    t_us = np.sort(rng.integers(0, t_end_us, n))
    x, y = rng.integers(0, w, n), rng.integers(0, h, n)
    p = rng.choice([-1, 1], n)
    return EventStream.from_arrays(x, y, t_us.astype(np.float64) * 1e-6, p, h, w)


def _frames(rng, h, w, channels=3):
    shape = (h, w, channels) if channels > 1 else (h, w)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in EXPOSURES]


def _h5_frames(images):
    return [Frame(img, (t0 + t1) / 2, t0, t1) for img, (t0, t1) in zip(images, EXPOSURES)]


@pytest.fixture(scope='module')
def efnet_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    net = EFNet(wf=8)
    path = tmp_path_factory.mktemp('ckpt') / 'efnet.pth'
    torch.save({'params': net.state_dict()}, path)
    return str(path)


@pytest.fixture(scope='module')
def lowlight_ckpts(tmp_path_factory):
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp('ckpt_ll')
    paths = {}
    for rgb in (False, True):
        net = LowLightEventDeblurNet(init_dim=32, rgb=rgb, grid=(2, 2) if rgb else (8, 10)).init_weights()
        paths[rgb] = str(folder / f'lowlight_{"rgb" if rgb else "aps"}.pth')
        torch.save({'params': net.state_dict()}, paths[rgb])
    return paths


def _efnet_dataset_output(folder, net, image, stream, t0, t1):
    """EFNet's dataset path: processed h5 (SCER + mask written with h5py), H5ImageDataset, padded forward."""
    win = stream.window(t0, t1, closed='both')
    raw = scer(win.x, win.y, win.t, win.p, 6, stream.height, stream.width)
    os.makedirs(folder, exist_ok=True)
    with h5py.File(os.path.join(folder, 'seq.h5'), 'w') as f:
        f.create_dataset('images/image000000000', data=np.ascontiguousarray(image.transpose(2, 0, 1)))
        f.create_dataset('voxels/voxel000000000', data=raw)
        f.create_dataset('masks/mask000000000', data=event_mask(raw)[None] * np.uint8(255))
        f.attrs['sensor_resolution'] = [stream.height, stream.width]
    item = H5ImageDataset({'dataroot': folder, 'return_mask': True, 'return_gt_frame': False})[0]
    inputs = {'x': item['frame'][None], 'event': item['voxel'][None], 'mask': item['mask'][None]}
    return forward_padded(net, inputs, net.size_multiple)[1][0].numpy()


def _fake_aedat(monkeypatch, stream, images, chunk=1000):
    dtype = [('t', '<u8'), ('x', '<u2'), ('y', '<u2'), ('on', '?')]
    packets = []
    for i0 in range(0, len(stream), chunk):
        s = stream[i0:i0 + chunk]
        ev = np.zeros(len(s), dtype)
        ev['t'] = np.round(s.t * 1e6).astype(np.uint64)
        ev['x'], ev['y'], ev['on'] = s.x, s.y, s.p > 0
        packets.append({'stream_id': 0, 'events': ev})
    for k, (img, (t0, t1)) in enumerate(zip(images, EXPOSURES)):
        rgb = img[:, :, ::-1].copy()  # AEDAT4 colour frames are RGB
        frame = {'t': int(round((t0 + t1) / 2 * 1e6)), 'begin_t': int(t0 * 1e6), 'end_t': int(t1 * 1e6),
                 'exposure_begin_t': int(round(t0 * 1e6)), 'exposure_end_t': int(round(t1 * 1e6)), 'format': 'RGB',
                 'width': W, 'height': H, 'offset_x': 0, 'offset_y': 0, 'pixels': rgb}
        packets.insert(min(len(packets), 2 * k + 1), {'stream_id': 1, 'frame': frame})
    streams = {0: {'type': 'events', 'width': W, 'height': H}, 1: {'type': 'frame', 'width': W, 'height': H}}
    install_fake_aedat(monkeypatch, packets, streams)


@pytest.mark.parametrize('fmt', ['h5', 'txt', 'npy', 'npz', 'aedat4'])
def test_efnet_each_format_equals_dataset_path(tmp_path, fmt, efnet_ckpt, monkeypatch):
    rng = np.random.default_rng(7)
    stream = _stream(rng, H, W)
    images = _frames(rng, H, W)
    path = str(tmp_path / f'rec.{fmt}')
    if fmt == 'h5':
        write_event_h5(path, stream, frames=_h5_frames(images))
        read_back = read_events(path)
    elif fmt == 'txt':
        write_text_events(path, stream)
        read_back = read_events(path)
    elif fmt == 'npy':
        write_npy_events(path, stream)
        read_back = read_events(path, height=H, width=W)
    elif fmt == 'npz':
        write_highrev_chunk(path, stream)
        read_back = read_highrev_events([path], H, W, drop_last=False)
    else:
        open(path, 'wb').close()
        _fake_aedat(monkeypatch, stream, images)
        read_back = read_aedat4(path)[0]
    assert len(read_back) == len(stream) and np.abs(read_back.t - stream.t).max() < 1e-9
    net = load_method('EFNet', efnet_ckpt)
    k = 1
    t0, t1 = EXPOSURES[k]
    expected = _efnet_dataset_output(str(tmp_path / 'processed'), net, images[k], read_back, t0, t1)
    if fmt in ('h5', 'aedat4'):  # frame and exposure from the file
        result = deblur_file(path, 'EFNet', net, frame=k)
        assert (result['t_start'], result['t_end']) == pytest.approx((t0, t1), abs=1e-12)
    else:
        png = str(tmp_path / 'blur.png')
        cv2.imwrite(png, images[k])
        result = deblur_file(path, 'EFNet', net, image=png, exposure=(t0, t1))
    assert result['sharp_float'].shape == (3, H, W)
    assert np.abs(result['sharp_float'] - expected).max() <= 1e-5
    # two paths equal up to rounding: a value at .5 may round either way to uint8
    assert np.abs(result['sharp'].astype(int) - tensor2img(torch.from_numpy(expected), rgb2bgr=False)).max() <= 1
    assert result['events'].shape == (H, W, 3) and result['panel'].shape[0] == H + CAPTION
    if fmt == 'h5':  # the API on an in-memory stream gives the same result
        direct = deblur(images[k], read_back, t0, t1, 'EFNet', net)
        assert np.abs(direct['sharp_float'] - expected).max() <= 1e-5


def test_recording_mode_writes_every_frame(tmp_path, efnet_ckpt):
    rng = np.random.default_rng(3)
    stream = _stream(rng, H, W)
    images = _frames(rng, H, W)
    path = str(tmp_path / 'rec.h5')
    write_event_h5(path, stream, frames=_h5_frames(images))
    out = tmp_path / 'out'
    written = main(['--events', path, '--method', 'EFNet', '--checkpoint', efnet_ckpt, '--out', str(out),
                    '--device', 'cpu', '--no-progress'])
    assert [w['name'] for w in written] == [f'{k:06d}' for k in range(len(images))]
    net = load_method('EFNet', efnet_ckpt)
    for k, (t0, t1) in enumerate(EXPOSURES):
        expected = _efnet_dataset_output(str(tmp_path / f'processed{k}'), net, images[k], stream, t0, t1)
        sharp = cv2.imread(str(out / 'sharp' / f'{k:06d}.png'), cv2.IMREAD_UNCHANGED)
        reference = tensor2img(torch.from_numpy(expected), rgb2bgr=False)
        assert sharp.shape == (H, W, 3) and np.abs(sharp.astype(int) - reference).max() <= 1
        panel = cv2.imread(str(out / 'panel' / f'{k:06d}.png'))
        assert panel.shape[0] == H + CAPTION and np.array_equal(panel[CAPTION:, :W], images[k])
        assert (out / 'events' / f'{k:06d}.png').is_file()
    assert sorted(os.listdir(out / 'sharp')) == [f'{k:06d}.png' for k in range(len(images))]


def test_tiled_inference_runs_full_size(tmp_path, efnet_ckpt):
    rng = np.random.default_rng(4)
    stream = _stream(rng, H, W)
    net = load_method('EFNet', efnet_ckpt)
    image = _frames(rng, H, W)[0]
    tiled = deblur(image, stream, *EXPOSURES[0], 'EFNet', net, tile=12)
    assert tiled['sharp_float'].shape == (3, H, W) and np.isfinite(tiled['sharp_float']).all()
    assert tiled['sharp'].shape == (H, W, 3)


def test_lowlight_aps_equals_real_dataset_path(tmp_path, lowlight_ckpts):
    rng = np.random.default_rng(11)
    h, w = 14, 36  # padded to 16 x 40 inside
    stream = _stream(rng, h, w)
    images = _frames(rng, h, w, channels=1)
    path = str(tmp_path / 'rec.h5')
    write_event_h5(path, stream, frames=_h5_frames(images))
    net = load_method('LowLightEventDeblurNet', lowlight_ckpts[False])
    assert not net.rgb and net.init_dim == 32
    k = 2
    t0, t1 = EXPOSURES[k]
    win = stream.window(t0, t1, closed='both')
    root = tmp_path / 'real'
    (root / 'events_voxel_grid').mkdir(parents=True)
    (root / 'APS_blur').mkdir()
    grid = voxel_grid(win.x, win.y, win.t, win.p, 13, h, w, t_range=(t0, t1))
    np.save(root / 'events_voxel_grid' / 'f.npy', np.ascontiguousarray(grid.transpose(1, 2, 0)))
    cv2.imwrite(str(root / 'APS_blur' / 'f.png'), images[k])
    item = LowLightRealDataset({'dataroot': str(root)})[0]
    inputs = {'E': item['E'][None], 'B': item['B'][None], 'Bi': item['Bi'][None]}
    with torch.no_grad():
        expected = forward_padded(net, inputs, net.size_multiple)[2][0].numpy()
    result = deblur_file(path, 'LowLightEventDeblurNet', net, frame=k)
    assert result['sharp_float'].shape == (1, h, w)
    assert np.abs(result['sharp_float'] - expected).max() <= 1e-5
    assert result['sharp'].shape == (h, w)
    assert np.abs(result['sharp'].astype(int) - tensor2img(torch.from_numpy(expected))).max() <= 1  # as above
    written = deblur_recording(path, str(tmp_path / 'out'), 'LowLightEventDeblurNet', net, progress=False)
    assert [w['name'] for w in written] == [f'{i:06d}' for i in range(len(images))]
    assert np.array_equal(cv2.imread(written[k]['sharp'], cv2.IMREAD_UNCHANGED), result['sharp'])


def test_lowlight_rgb_takes_aps_from_file(tmp_path, lowlight_ckpts):
    rng = np.random.default_rng(12)
    h, w = 16, 16  # grid (2, 2): size multiple 8 x 8
    stream = _stream(rng, h, w)
    aps = _frames(rng, h, w, channels=1)
    path = str(tmp_path / 'rec.h5')
    write_event_h5(path, stream, frames=_h5_frames(aps))
    rgb = rng.integers(0, 256, (3 * h, 3 * w, 3), dtype=np.uint8)
    png = str(tmp_path / 'rgb.png')
    cv2.imwrite(png, rgb)
    out = tmp_path / 'out'
    main(['--events', path, '--image', png, '--frame', '0', '--method', 'LowLightEventDeblurNet', '--checkpoint',
          lowlight_ckpts[True], '--net-opt', 'grid=[2, 2]', '--out', str(out), '--no-progress'])
    net = load_method('LowLightEventDeblurNet', lowlight_ckpts[True], {'grid': (2, 2)})
    assert net.rgb
    result = deblur(rgb, stream, *EXPOSURES[0], 'LowLightEventDeblurNet', net, aps=aps[0])
    written = cv2.imread(str(out / 'sharp' / 'rgb.png'), cv2.IMREAD_UNCHANGED)
    assert written.shape == (3 * h, 3 * w, 3) and np.array_equal(written, result['sharp'])


def test_edi_runs_without_checkpoint_on_the_raw_events(tmp_path):
    """infer.py's EDI is the exact step integral of the raw events (edi_deblur), not the SCER approximation."""
    rng = np.random.default_rng(5)
    stream = _stream(rng, H, W)
    image = _frames(rng, H, W)[0]
    png = str(tmp_path / 'blur.png')
    cv2.imwrite(png, image)
    txt = str(tmp_path / 'ev.txt')
    write_text_events(txt, stream)
    out = tmp_path / 'out'
    main(['--events', txt, '--image', png, '--exposure', '0.02', '0.08', '--method', 'EDI', '--net-opt',
          'threshold=0.2', '--no-denoise', '--out', str(out), '--no-progress'])
    win = stream.window(0.02, 0.08, closed='both')
    expected, c = edi_deblur(image.astype(np.float64) / 255, win.x, win.y, win.t, win.p, 0.02, 0.08, threshold=0.2)
    written = cv2.imread(str(out / 'sharp' / 'blur.png'))
    # both round the same float result to uint8; float32 vs float64 arithmetic may flip a rounding by one level
    assert c == 0.2 and np.abs(written.astype(int) - tensor2img(torch.from_numpy(expected.transpose(2, 0, 1)),
                                                                rgb2bgr=False)).max() <= 1


def test_recognise_state_dict():
    assert recognise_state_dict(EFNet(wf=8).state_dict())[0] == 'EFNet'
    assert recognise_state_dict(LowLightEventDeblurNet(init_dim=32).state_dict()) == ('LowLightEventDeblurNet', 'APS')
    assert recognise_state_dict(LowLightEventDeblurNet(init_dim=32, rgb=True).state_dict())[1] == 'RGB'
    assert recognise_state_dict({'conv.weight': torch.zeros(1)})[0] is None


# ---------------------------------------------------------------- bad input: raises before any output is written


@pytest.fixture
def recording(tmp_path):
    rng = np.random.default_rng(9)
    stream = _stream(rng, H, W)
    images = _frames(rng, H, W)
    path = str(tmp_path / 'rec.h5')
    write_event_h5(path, stream, frames=_h5_frames(images))
    png = str(tmp_path / 'blur.png')
    cv2.imwrite(png, images[0])
    return {'h5': path, 'png': png, 'stream': stream, 'out': tmp_path / 'out'}


def _fails(args, out, match, exc=InferenceError):
    with pytest.raises(exc, match=match):
        main(args + ['--out', str(out), '--no-progress'])
    assert not out.exists() or not any(out.rglob('*'))


def test_bad_missing_files(recording, efnet_ckpt, tmp_path):
    r = recording
    base = ['--method', 'EFNet', '--checkpoint', efnet_ckpt]
    _fails(base + ['--events', str(tmp_path / 'nope.h5')], r['out'], 'event file not found')
    _fails(base + ['--events', r['h5'], '--image', str(tmp_path / 'nope.png'), '--frame', '0'], r['out'],
           'file not found.*nope.png')
    _fails(['--method', 'EFNet', '--checkpoint', str(tmp_path / 'none.pth'), '--events', r['h5']], r['out'],
           'checkpoint.*not found')


def test_bad_unreadable_files(recording, efnet_ckpt, tmp_path):
    r = recording
    base = ['--method', 'EFNet', '--checkpoint', efnet_ckpt]
    garbage = tmp_path / 'garbage.h5'
    garbage.write_bytes(b'not an hdf5 file')
    _fails(base + ['--events', str(garbage)], r['out'], 'cannot open as an HDF5', EventFormatError)
    bad_png = tmp_path / 'bad.png'
    bad_png.write_bytes(b'not a png')
    _fails(base + ['--events', r['h5'], '--image', str(bad_png), '--frame', '0'], r['out'], 'cannot decode.*PNG')
    bad_txt = tmp_path / 'bad.txt'
    bad_txt.write_text('0.1 2 3 1 9\n')
    _fails(base + ['--events', str(bad_txt), '--image', r['png'], '--exposure', '0', '1'], r['out'], '4 columns',
           EventFormatError)
    bad_ckpt = tmp_path / 'bad.pth'
    bad_ckpt.write_bytes(b'truncated')
    _fails(['--method', 'EFNet', '--checkpoint', str(bad_ckpt), '--events', r['h5']], r['out'], 'Cannot read')


def test_bad_empty_window(recording, efnet_ckpt):
    r = recording
    _fails(['--method', 'EFNet', '--checkpoint', efnet_ckpt, '--events', r['h5'], '--image', r['png'], '--exposure',
            '5', '6'], r['out'], r'exposure window \[5.0, 6.0\] s holds no events')


def test_bad_empty_window_in_last_frame_of_recording(tmp_path, efnet_ckpt):
    rng = np.random.default_rng(2)
    stream = _stream(rng, H, W, t_end_us=200_000)  # the last exposure (0.22 .. 0.28 s) has no events
    path = str(tmp_path / 'rec.h5')
    write_event_h5(path, stream, frames=_h5_frames(_frames(rng, H, W)))
    _fails(['--method', 'EFNet', '--checkpoint', efnet_ckpt, '--events', path], tmp_path / 'out',
           'frame 2: the exposure window .* holds no events')


def test_bad_frame_size(recording, efnet_ckpt, tmp_path):
    r = recording
    small = str(tmp_path / 'small.png')
    cv2.imwrite(small, np.zeros((H - 2, W, 3), np.uint8))
    _fails(['--method', 'EFNet', '--checkpoint', efnet_ckpt, '--events', r['h5'], '--image', small, '--frame', '0'],
           r['out'], f'frame is {H - 2}x{W}, but the event sensor .* is {H}x{W}')
    # a file without sensor size: the frame size is assumed, and events outside it are reported
    npy = str(tmp_path / 'ev.npy')
    write_npy_events(npy, r['stream'])
    _fails(['--method', 'EFNet', '--checkpoint', efnet_ckpt, '--events', npy, '--image', small, '--exposure', '0',
            '0.1'], r['out'], 'outside the sensor.*frame size')


def test_bad_rgb_not_three_times(tmp_path, lowlight_ckpts):
    rng = np.random.default_rng(13)
    h, w = 16, 16
    stream = _stream(rng, h, w)
    path = str(tmp_path / 'rec.h5')
    write_event_h5(path, stream, frames=_h5_frames(_frames(rng, h, w, channels=1)))
    png = str(tmp_path / 'rgb.png')
    cv2.imwrite(png, np.zeros((2 * h, 2 * w, 3), np.uint8))
    _fails(['--method', 'LowLightEventDeblurNet', '--checkpoint', lowlight_ckpts[True], '--net-opt', 'grid=[2, 2]',
            '--events', path, '--image', png, '--frame', '0'], tmp_path / 'out', f'needs exactly 3x .*{3 * h}x{3 * w}')


def test_bad_checkpoint_of_another_method(recording, efnet_ckpt, lowlight_ckpts, tmp_path):
    r = recording
    _fails(['--method', 'EFNet', '--checkpoint', lowlight_ckpts[False], '--events', r['h5']], r['out'],
           r'looks like a LowLightEventDeblurNet \(APS\) checkpoint, but method EFNet')
    _fails(['--method', 'LowLightEventDeblurNet', '--checkpoint', efnet_ckpt, '--events', r['h5']], r['out'],
           'looks like a EFNet checkpoint, but method LowLightEventDeblurNet')
    _fails(['--method', 'LowLightEventDeblurNet', '--rgb', '--checkpoint', lowlight_ckpts[False], '--events',
            r['h5']], r['out'], r'\(APS\) checkpoint, but rgb=True')
    unknown = tmp_path / 'unknown.pth'
    torch.save({'params': {'conv.weight': torch.zeros(2, 2, 3, 3)}}, unknown)
    _fails(['--method', 'EFNet', '--checkpoint', str(unknown), '--events', r['h5']], r['out'],
           'does not look like an EFNet or LowLightEventDeblurNet')
    _fails(['--method', 'EFNet', '--checkpoint', efnet_ckpt, '--net-opt', 'wf=16', '--events', r['h5']], r['out'],
           'does not fit EFNet')


def test_option_file_and_aedat_recording_frames(tmp_path, efnet_ckpt, monkeypatch):
    rng = np.random.default_rng(21)
    stream = _stream(rng, H, W)
    images = _frames(rng, H, W)
    path = str(tmp_path / 'rec.aedat4')
    open(path, 'wb').close()
    _fake_aedat(monkeypatch, stream, images)
    opt = tmp_path / 'efnet.yml'
    opt.write_text(f'network_g:\n  type: EFNet\n  wf: 8\npath:\n  pretrain_network_g: {efnet_ckpt}\n')
    out = tmp_path / 'out'
    written = main(['-opt', str(opt), '--events', path, '--frame', '0', '2', '--out', str(out), '--no-progress'])
    assert [w['name'] for w in written] == ['000000', '000002']
    net = load_method('EFNet', efnet_ckpt)
    expected = _efnet_dataset_output(str(tmp_path / 'processed'), net, images[2], stream, *EXPOSURES[2])
    sharp = cv2.imread(written[1]['sharp'], cv2.IMREAD_UNCHANGED)
    assert np.abs(sharp.astype(int) - tensor2img(torch.from_numpy(expected), rgb2bgr=False)).max() <= 1


def test_bad_arguments(recording, efnet_ckpt, tmp_path):
    r = recording
    base = ['--method', 'EFNet', '--checkpoint', efnet_ckpt, '--events', r['h5']]
    _fails(base + ['--image', r['png'], '--exposure', '0.08', '0.02'], r['out'], r'must satisfy t0 < t1')
    _fails(base + ['--frame', '7'], r['out'], 'has 3 frames; expected an index in 0..2')
    _fails(base + ['--image', r['png']], r['out'], 'no exposure window')
    _fails(base + ['--net-opt', 'wf'], r['out'], 'expected key=value')
    _fails(['--method', 'EDI', '--checkpoint', efnet_ckpt, '--events', r['h5']], r['out'], 'EDI has no parameters')
    if not torch.cuda.is_available():
        _fails(base + ['--device', 'cuda'], r['out'], 'CUDA is not available')
    txt = str(tmp_path / 'ev.txt')
    write_text_events(txt, r['stream'])
    _fails(base[:4] + ['--events', txt], r['out'], 'holds no frames')
