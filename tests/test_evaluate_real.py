"""scripts/evaluate_real.py: reads the eSL-Net .mat, camerashake .txt and h5 layouts and measures EDI's outputs."""
import importlib.util
import os

import cv2
import numpy as np
import pytest

from basicsr.events import write_event_h5
from basicsr.infer import deblur_frames
from basicsr.models.deblur_methods import InferenceError, load_method
from edi_scenes import h5_frames, recording_stream, simulate_frames
from pipeline_utils import REPO_ROOT


def load_script():
    spec = importlib.util.spec_from_file_location('evaluate_real', REPO_ROOT / 'scripts' / 'evaluate_real.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def er():
    return load_script()


@pytest.fixture(scope='module')
def frames():
    return simulate_frames(2, 0.2, seed=4)


def _write_txt_layout(folder, frames):
    """camerashake layout: PNGs and per-frame txt ``t row col p``, 1-based, t normalised over the exposure."""
    images, events = folder / 'shake_blurimage', folder / 'shake_event_frame_txt'
    images.mkdir(parents=True)
    events.mkdir()
    for k, f in enumerate(frames):
        cv2.imwrite(str(images / f'{k + 2:04d}.png'), f['image'])
        ev = f['events']
        t = (ev.t - f['t_start']) / (f['t_end'] - f['t_start'])
        rows = np.stack([t, ev.y + 1, ev.x + 1, (ev.p > 0).astype(int)], 1)
        np.savetxt(events / f'{k + 2:04d}.txt', rows, fmt=['%.8f', '%d', '%d', '%d'])
    cv2.imwrite(str(images / '0099.png'), frames[0]['image'])  # a frame without events is skipped
    return str(images), str(events)


def _check_rows(rows, names):
    assert [r['name'] for r in rows] == names
    for r in rows:
        assert r['threshold'].source in ('joint', 'fallback') and 0 < r['threshold'].value <= 2
        assert all(np.isfinite(r[k]) and r[k] >= 0 for k in ('sharp_blurry', 'sharp_output', 'noise_blurry',
                                                               'noise_output'))
        assert r['sharp_output'] > r['sharp_blurry']  # simulated blur, events of the true motion: EDI sharpens


def test_txt_layout_reads_one_based_normalised_events(er, frames, tmp_path, capsys):
    images, events = _write_txt_layout(tmp_path, frames)
    rows, summary = er.main(['--images', images, '--events', events])
    _check_rows(rows, ['0002', '0003'])
    out = capsys.readouterr().out
    assert '1 frames without an event file skipped' in out and 'summary shake_blurimage: 2 frames' in out
    # the same frames on their original clock and 0-based pixels give the same thresholds (times are relative)
    direct = deblur_frames([{'name': str(k), 'image': f['image'], 'events': f['events'], 't_start': f['t_start'],
                             't_end': f['t_end']} for k, f in enumerate(frames)], 'EDI', load_method('EDI'))
    assert [r['threshold'].source for r in rows] == [r['threshold'].source for r in direct]
    np.testing.assert_allclose([r['threshold'].value for r in rows], [r['threshold'].value for r in direct],
                               rtol=1e-3)
    assert summary['frames'] == 2 and summary['sharp_output'] > summary['sharp_blurry']


def test_esl_mat_layout(er, frames, tmp_path):
    scipy_io = pytest.importorskip('scipy.io', reason='scipy (not a project dependency) writes the test .mat files')
    images, mats = tmp_path / 'images', tmp_path / 'mat'
    images.mkdir()
    mats.mkdir()
    clock = 1.6e9  # eSL-Net stores Unix times in seconds
    for k, f in enumerate(frames):
        cv2.imwrite(str(images / f'{k + 10:06d}.png'), f['image'])
        ev = f['events']
        scipy_io.savemat(str(mats / f'event{k + 10:06d}.mat'), {
            'section_event_timestamp': (ev.t + clock)[None], 'section_event_x': ev.x.astype(np.int64)[None],
            'section_event_y': ev.y.astype(np.int64)[None], 'section_event_polarity': (ev.p > 0).astype(int)[None],
            'start_timestamp': np.array([[f['t_start'] + clock]]), 'end_timestamp': np.array([[f['t_end'] + clock]])})
    out = tmp_path / 'out'
    rows, _ = er.main(['--images', str(images), '--events', str(mats), '--out', str(out)])
    _check_rows(rows, ['000010', '000011'])
    assert sorted(os.listdir(out / 'sharp')) == ['000010.png', '000011.png'] and (out / 'thresholds.csv').is_file()


def test_h5_recording_and_a_given_threshold(er, frames, tmp_path):
    path = str(tmp_path / 'rec.h5')
    write_event_h5(path, recording_stream(frames), frames=h5_frames(frames))
    rows, summary = er.main(['--recording', path, '--net-opt', 'threshold=0.2'])
    assert [(r['name'], r['threshold'].value, r['threshold'].source) for r in rows] == [
        ('000000', 0.2, 'given'), ('000001', 0.2, 'given')]
    assert summary['thresholds'] == 'given 0.2 for 2 frames'


def test_figures_measure_what_they_say(er):
    rng = np.random.default_rng(0)
    img = np.full((64, 64), 0.5)
    img[:, 32:] = 0.8
    blurred = cv2.GaussianBlur(img, (9, 9), 3)
    assert er.sharpness(img) > er.sharpness(blurred) > 0
    corners = er.flat_blocks(img)
    assert all(c >= 32 + 16 or c + 16 <= 32 for _, c in corners)  # no block straddles the edge
    noisy = img + rng.normal(0, 0.02, img.shape)
    assert er.flat_noise(noisy, corners) > 10 * er.flat_noise(img, corners)


def test_bad_folders_get_clear_messages(er, tmp_path):
    (tmp_path / 'imgs').mkdir()
    (tmp_path / 'evs').mkdir()
    with pytest.raises(InferenceError, match='no .png frames'):
        er.main(['--images', str(tmp_path / 'imgs'), '--events', str(tmp_path / 'evs')])
    cv2.imwrite(str(tmp_path / 'imgs' / '0001.png'), np.zeros((8, 8), np.uint8))
    (tmp_path / 'evs' / '0001.txt').write_text('0.5 1 1\n')
    with pytest.raises(InferenceError, match='4 columns'):
        er.main(['--images', str(tmp_path / 'imgs'), '--events', str(tmp_path / 'evs')])
    with pytest.raises(InferenceError, match='--images DIR --events DIR'):
        er.main(['--images', str(tmp_path / 'imgs')])
