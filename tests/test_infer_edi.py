"""infer.py with EDI: exact raw-event integral, joint threshold, never silent, thresholds recorded, bad input refused."""
import csv
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from basicsr.archs import build_network
from basicsr.events import EventStream, event_frame, scer, write_event_h5, write_text_events
from basicsr.events.edi import DEFAULT_THRESHOLD, edi_deblur
from basicsr.infer import THRESHOLDS_FILE, deblur, deblur_frames, main, make_denoiser
from basicsr.models.deblur_methods import InferenceError, InferenceWarning, load_method
from basicsr.models.edi_threshold import ThresholdWarning, choose_thresholds, read_thresholds_csv
from basicsr.utils.img_util import make_panel
from edi_scenes import H, W, h5_frames, recording_stream, simulate_frames

REPO_ROOT = Path(__file__).resolve().parents[1]
TRUE_C = 0.2


@pytest.fixture(scope='module')
def scene_frames():
    return simulate_frames(3, TRUE_C, seed=1)


@pytest.fixture(scope='module')
def h5_recording(scene_frames, tmp_path_factory):
    path = tmp_path_factory.mktemp('rec') / 'rec.h5'
    write_event_h5(str(path), recording_stream(scene_frames), frames=h5_frames(scene_frames))
    return str(path)


def _as_job(frames):
    return [{'name': f'{k:06d}', 'image': f['image'], 'events': f['events'], 't_start': f['t_start'],
             't_end': f['t_end']} for k, f in enumerate(frames)]


def _csv_rows(out):
    with open(out / THRESHOLDS_FILE, newline='', encoding='utf-8') as f:
        return list(csv.DictReader(f))


def _run(args, out):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        main(args + ['--out', str(out), '--no-progress'])
    return [str(w.message) for w in caught]


def test_recording_gets_one_joint_threshold_recorded_beside_the_outputs_and_in_the_panels(h5_recording,
                                                                                         scene_frames, tmp_path):
    out = tmp_path / 'out'
    messages = _run(['--events', h5_recording, '--method', 'EDI', '--no-denoise'], out)
    assert not [m for m in messages if 'fallback' in m or 'unchanged' in m], messages
    rows = _csv_rows(out)
    assert [r['frame'] for r in rows] == ['000000', '000001', '000002']
    assert {r['source'] for r in rows} == {'joint'} and len({r['threshold'] for r in rows}) == 1
    c = float(rows[0]['threshold'])
    assert abs(c - TRUE_C) <= 0.15 * TRUE_C, c  # noise-free simulated frames: the joint estimate finds the sensor's
    for k, frame in enumerate(scene_frames):
        sharp = cv2.imread(str(out / 'sharp' / f'{k:06d}.png'), cv2.IMREAD_UNCHANGED)
        win = frame['events']
        # the panel shows exactly the threshold of the CSV: rebuild it with that caption
        picture = np.ascontiguousarray(event_frame(win.x, win.y, win.p, H, W)[:, :, ::-1])
        expected = make_panel([frame['image'], picture, sharp], ['blurry', 'events', f'EDI c={c:.3f} joint'])
        assert np.array_equal(cv2.imread(str(out / 'panel' / f'{k:06d}.png')), expected)
        blur_err = np.abs(frame['image'] / 255 - frame['sharp']).mean()
        assert np.abs(sharp / 255 - frame['sharp']).mean() < 0.7 * blur_err  # deblurred, not returned as is


def test_per_frame_and_windowed_estimates(scene_frames, tmp_path):
    frames = _as_job(scene_frames)
    per_frame = deblur_frames(frames, 'EDI', load_method('EDI'), threshold_mode='per-frame')
    assert [r['threshold'].source for r in per_frame] == ['per-frame'] * 3
    for frame, result in zip(frames, per_frame):  # each frame its own estimate: the joint one over that frame alone
        alone = deblur_frames([frame], 'EDI', load_method('EDI'))[0]['threshold']
        assert alone.source == 'joint' and result['threshold'].value == pytest.approx(alone.value, rel=1e-9)
    windowed = deblur_frames(frames, 'EDI', load_method('EDI'), threshold_window=2)
    values = [r['threshold'].value for r in windowed]
    assert [r['threshold'].source for r in windowed] == ['joint'] * 3
    assert values[0] == values[1] and values[2] == per_frame[2]['threshold'].value  # windows {0, 1} and {2}
    assert 'estimated over 2 of the 2 frames 000000 .. 000001' in windowed[0]['threshold'].reason


def test_edi_result_equals_edi_deblur_with_the_chosen_threshold(scene_frames):
    """The estimate path too deblurs with the exact step integral of the raw events (edi_deblur)."""
    frames = _as_job(scene_frames[:2])
    results = deblur_frames(frames, 'EDI', load_method('EDI'))
    for frame, result in zip(frames, results):
        ev = frame['events']
        expected, _ = edi_deblur(frame['image'].astype(np.float64) / 255, ev.x, ev.y, ev.t, ev.p, frame['t_start'],
                                 frame['t_end'], threshold=result['threshold'].value)
        # same float64 computation, cast to float32 on both paths
        np.testing.assert_allclose(result['sharp_float'][0], expected, rtol=1e-6, atol=1e-7)


def test_frame_without_enough_events_falls_back_with_a_warning(tmp_path):
    rng = np.random.default_rng(3)
    image = rng.integers(40, 200, (H, W), dtype=np.uint8)
    few = EventStream.from_arrays([3, 9, 20, 30, 40], [5, 7, 9, 11, 13], [0.0, 0.02, 0.05, 0.08, 0.1],
                                  [1, -1, 1, 1, -1], H, W)
    png, txt, out = str(tmp_path / 'sparse.png'), str(tmp_path / 'ev.txt'), tmp_path / 'out'
    cv2.imwrite(png, image)
    write_text_events(txt, few)
    with pytest.warns(ThresholdWarning, match=f'no threshold estimate for .*sparse.png.*fallback threshold '
                                              f'{DEFAULT_THRESHOLD}'):
        with pytest.warns(InferenceWarning, match='only 5 events on 5 pixels'):
            main(['--events', txt, '--image', png, '--exposure', '0', '0.1', '--method', 'EDI', '--no-denoise',
                  '--out', str(out)])
    rows = _csv_rows(out)
    assert [(r['frame'], float(r['threshold']), r['source']) for r in rows] == [('sparse', DEFAULT_THRESHOLD,
                                                                                 'fallback')]
    assert 'pixels' in rows[0]['reason']
    sharp = cv2.imread(str(out / 'sharp' / 'sparse.png'), cv2.IMREAD_UNCHANGED)
    assert not np.array_equal(sharp, image)  # the fallback threshold corrects the pixels that have events


@pytest.mark.parametrize('case', ['scene', 'sparse', 'cancelling'])
def test_edi_never_returns_its_input_unchanged_without_saying_so(scene_frames, case):
    if case == 'scene':
        frame = scene_frames[0]
        image, events, t0, t1 = frame['image'], frame['events'], frame['t_start'], frame['t_end']
    else:
        image = np.full((H, W), 120, np.uint8)
        t0, t1 = 0.0, 0.01
        if case == 'sparse':
            events = EventStream.from_arrays([5, 6, 7], [5, 5, 5], [0.0, 0.003, 0.01], [1, 1, 1], H, W)
        else:  # every event undone a microsecond later: the event factor is 1 to within rounding
            xs = np.arange(0, 40, 2)
            events = EventStream.from_arrays(np.concatenate([xs, xs]), np.full(40, 10),
                                             np.concatenate([np.zeros(20), np.full(20, 1e-6)]),
                                             np.concatenate([np.ones(20), -np.ones(20)]), H, W, sort=True)
            events = EventStream.from_arrays(np.r_[events.x, 0], np.r_[events.y, 0], np.r_[events.t, t1],
                                             np.r_[events.p, 1], H, W)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        result = deblur(image, events, t0, t1, 'EDI', load_method('EDI'))
    changed = not np.array_equal(result['sharp'], image)
    said = any('unchanged' in str(w.message) for w in caught)
    assert changed or said
    assert changed == (case != 'cancelling') and said == (case == 'cancelling')


def test_thresholds_file_keeps_rows_of_earlier_single_frame_runs(scene_frames, tmp_path):
    out = tmp_path / 'out'
    for k, frame in enumerate(scene_frames[:2]):
        png, txt = str(tmp_path / f'f{k}.png'), str(tmp_path / f'e{k}.txt')
        cv2.imwrite(png, frame['image'])
        write_text_events(txt, frame['events'])
        _run(['--events', txt, '--image', png, '--exposure', str(frame['t_start']), str(frame['t_end']), '--method',
              'EDI', '--net-opt', f'threshold={0.2 + 0.05 * k}'], out)
    assert {k: (v.value, v.source) for k, v in read_thresholds_csv(str(out / THRESHOLDS_FILE)).items()} == {
        'f0': (0.2, 'given'), 'f1': (0.25, 'given')}


def _fails(args, out, match):
    with pytest.raises(InferenceError, match=match):
        main(args + ['--out', str(out), '--no-progress'])
    assert not out.exists()


def test_bad_input_gets_a_clear_message_and_nothing_is_written(h5_recording, scene_frames, tmp_path):
    out = tmp_path / 'out'
    base = ['--events', h5_recording, '--method', 'EDI']
    for value in ('0', '-0.2', '3', '.inf'):
        _fails(base + ['--net-opt', f'threshold={value}'], out, 'threshold')
    _fails(base + ['--net-opt', 'threshold=2.5'], out, r'not a plausible contrast threshold.*\(0, 2\.0\]')
    _fails(base + ['--edi-window', '-1'], out, 'edi-window')
    _fails(base + ['--denoise', 'ba_window'], out, 'expected key=value')
    # an exposure the events do not cover: the recording stops before its end
    png, txt = str(tmp_path / 'f.png'), str(tmp_path / 'e.txt')
    cv2.imwrite(png, scene_frames[0]['image'])
    write_text_events(txt, scene_frames[0]['events'])
    t0, t1 = scene_frames[0]['t_start'], scene_frames[0]['t_end']
    _fails(['--events', txt, '--image', png, '--method', 'EDI', '--exposure', str(t0), str(t1 + 0.5 * (t1 - t0))], out,
           'do not cover the exposure')
    with pytest.raises(InferenceError, match='do not cover'):
        deblur_frames([{'name': 'late', 'image': scene_frames[0]['image'], 'events': scene_frames[0]['events'],
                        't_start': t0 - 0.2 * (t1 - t0), 't_end': t1}], 'EDI', load_method('EDI'))
    # a recording whose last frame is exposed after its events end
    frames = h5_frames(scene_frames)
    frames[-1].exposure_end += 0.5 * (t1 - t0)
    cut = str(tmp_path / 'cut.h5')
    write_event_h5(cut, recording_stream(scene_frames), frames=frames)
    _fails(['--events', cut, '--method', 'EDI'], out, 'frame 2: the events .* do not cover the exposure')


def test_denoised_events_reach_edi(scene_frames):
    pytest.importorskip('basicsr.events.denoise')
    from basicsr.events.denoise import denoise_events

    frame = scene_frames[0]
    rng = np.random.default_rng(0)
    ev = frame['events']
    n = 200  # isolated background-activity events
    noisy = EventStream.from_arrays(np.r_[ev.x, rng.integers(0, W, n)], np.r_[ev.y, rng.integers(0, H, n)],
                                    np.r_[ev.t, rng.uniform(frame['t_start'], frame['t_end'], n)],
                                    np.r_[ev.p, rng.choice([-1, 1], n)], H, W, sort=True)
    options = {'ba_window': 0.002}
    result = deblur(frame['image'], noisy, frame['t_start'], frame['t_end'], 'EDI',
                    load_method('EDI', None, {'threshold': 0.2}), denoise=make_denoiser(options))
    x, y, t, p = denoise_events(noisy.x, noisy.y, noisy.t, noisy.p, H, W, options)
    assert len(t) < len(noisy.t)
    expected, _ = edi_deblur(frame['image'].astype(np.float64) / 255, x, y, t, p, frame['t_start'], frame['t_end'],
                             threshold=0.2)
    np.testing.assert_allclose(result['sharp_float'][0], expected, rtol=1e-6, atol=1e-7)


def test_edi_denoises_by_default_as_recommended(tmp_path):
    """infer.py's EDI gets basicsr.events.edi.DEFAULT_DENOISE unless told otherwise: isolated events go."""
    pytest.importorskip('basicsr.events.denoise')
    from basicsr.events.edi import DEFAULT_DENOISE

    image = np.full((H, W), 120, np.uint8)
    isolated = EventStream.from_arrays([3, 20, 40], [5, 20, 40], [0.0, 0.05, 0.1], [1, -1, 1], H, W)
    png, txt = str(tmp_path / 'f.png'), str(tmp_path / 'e.txt')
    cv2.imwrite(png, image)
    write_text_events(txt, isolated)
    base = ['--events', txt, '--image', png, '--exposure', '0', '0.1', '--method', 'EDI', '--net-opt', 'threshold=0.2']
    explicit = [a for k, v in DEFAULT_DENOISE.items() for a in ('--denoise', f'{k}={str(v).lower()}')]
    for extra, kept in (([], 0), (explicit, 0), (['--no-denoise'], 3)):
        messages = _run(base + extra, tmp_path / f'out{len(extra)}')
        assert any(f'only {kept} events on {kept} pixels' in m for m in messages), messages


def test_edi_network_falls_back_per_frame_and_says_so():
    """The dataset path (SCER) falls back to DEFAULT_THRESHOLD for a frame without an estimate, and records it."""
    frame = simulate_frames(1, TRUE_C, seed=2)[0]
    ev = frame['events']
    rep = torch.stack([torch.from_numpy(scer(ev.x, ev.y, ev.t, ev.p, 6, H, W)), torch.zeros(6, H, W)])
    sparse = torch.zeros(6, H, W)
    sparse[0, 3, 3] = -1
    rep[1] = sparse
    x = torch.from_numpy(np.stack([frame['blur'], frame['blur']]))[:, None]
    net = build_network({'type': 'EDI'})
    out = net(x, rep)
    assert net.last_sources == ['per-frame', 'fallback']
    assert net.last_threshold[1] == DEFAULT_THRESHOLD and 'only 1 pixels with events' in net.last_reasons[1]
    assert out[1, 0, 3, 3] != x[1, 0, 3, 3]  # corrected with the fallback threshold
    with pytest.raises(ValueError, match='not a plausible contrast threshold'):
        build_network({'type': 'EDI', 'threshold': 2.5})


def test_test_py_logs_and_records_the_threshold_of_every_image(tmp_path):
    opt = REPO_ROOT / 'options' / 'test' / 'Synthetic' / 'EDI.yml'
    cmd = [sys.executable, str(REPO_ROOT / 'basicsr' / 'test.py'), '-opt', str(opt), '--force_yml',
           f'path:root={tmp_path}', 'datasets:test:num_samples=2', 'datasets:test:size=[32, 40]', 'num_gpu=0',
           'network_g:threshold=~']
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'approximated with the trapezoid rule' in log and 'EDI thresholds on synthetic-test:' in log
    rows = read_thresholds_csv(str(tmp_path / 'results' / 'EDI_synthetic' / 'synthetic-test_thresholds.csv'))
    assert list(rows) == ['synthetic_0000', 'synthetic_0001']
    for name, choice in rows.items():
        assert choice.source in ('per-frame', 'fallback') and 0 < choice.value <= 2
        if choice.source == 'fallback':
            assert f'no threshold estimate for {name}' in log


def test_choose_thresholds_rejects_bad_modes():
    with pytest.raises(ValueError, match='threshold mode'):
        choose_thresholds(['a'], None, mode='global')
    with pytest.raises(ValueError, match='threshold window'):
        choose_thresholds(['a'], None, window=-2)


def test_given_threshold_is_recorded_as_given():
    choices = choose_thresholds(['a', 'b'], None, given=0.3)
    assert [(c.value, c.source) for c in choices] == [(0.3, 'given')] * 2
    assert choices[0].label() == 'EDI c=0.300 given'
