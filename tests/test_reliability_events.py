"""Corrupt event timestamps (NaN, inf, unsorted) are refused by every reader and maker, naming file and index."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from basicsr.events import (EventFormatError, EventStream, Frame, H5EventReader, check_timestamps, read_events,
                            read_highrev_events, write_event_h5, write_highrev_chunk, write_text_events)
from fake_aedat import install_fake_aedat

ROOT = Path(__file__).resolve().parents[1]
H, W, N = 12, 16, 4000
EXPOSURE = (0.4, 0.6)


def _stream(n=N):
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 1, n))
    return EventStream.from_arrays(rng.integers(0, W, n), rng.integers(0, H, n), t, rng.choice([-1, 1], n), H, W)


def _corrupt(t, fault):
    """Returns corrupted timestamps and the index the error must name."""
    t = t.copy()
    if fault == 'swapped':  # the halves swapped: sorted inside each half, one decrease at the seam
        half = len(t) // 2
        return np.concatenate([t[half:], t[:half]]), len(t) - half
    bad = int(np.searchsorted(t, 0.5))  # mid-window
    t[bad] = np.nan if fault == 'nan' else np.inf
    return t, bad


def _write_h5(path, stream, t):
    write_event_h5(path, stream, frames=[Frame(np.zeros((H, W, 3), np.uint8), 0.5, *EXPOSURE)])
    with h5py.File(path, 'r+') as f:
        f['events/ts'][:] = t


# AEDAT4 times are integers (microseconds): no NaN or infinity to store
READER_CASES = [(ext, fault) for ext in ('.h5', '.txt', '.npy', '.npz', '.aedat4')
                for fault in ('nan', 'inf', 'swapped') if ext != '.aedat4' or fault == 'swapped']


@pytest.mark.parametrize('ext,fault', READER_CASES)
def test_every_reader_names_file_and_first_bad_index(tmp_path, monkeypatch, ext, fault):
    stream = _stream()
    t, bad = _corrupt(stream.t, fault)
    path = tmp_path / f'rec{ext}'
    bad_stream = EventStream(stream.x, stream.y, t, stream.p, H, W)
    if ext == '.h5':
        _write_h5(path, stream, t)
    elif ext == '.txt':
        write_text_events(path, stream)
        lines = path.read_text().splitlines()
        lines[-N:] = [f'{ti!r} {line.split(" ", 1)[1]}' for ti, line in zip(t.tolist(), lines[-N:])]
        path.write_text('\n'.join(lines) + '\n')
    elif ext == '.npy':
        np.save(path, bad_stream.to_array())
    elif ext == '.npz':
        np.savez(path, x=stream.y[:, None], y=stream.x[:, None], timestamp=t[:, None],
                 polarity=(stream.p > 0)[:, None])
    else:
        dtype = [('t', '<u8'), ('x', '<u2'), ('y', '<u2'), ('on', '?')]
        t_us = np.round(t * 1e6).astype(np.uint64)
        events = np.array(list(zip(t_us, stream.x, stream.y, stream.p > 0)), dtype=dtype)
        path.write_bytes(b'fake')
        install_fake_aedat(monkeypatch, [{'stream_id': 0, 'events': events[:100]},
                                         {'stream_id': 0, 'events': events[100:]}],
                           {0: {'type': 'events', 'width': W, 'height': H}})
    what = 'NaN or infinite' if fault != 'swapped' else 'not sorted'
    index = f'timestamp {bad} ' if fault != 'swapped' else rf't\[{bad}\]'
    kwargs = {'height': H, 'width': W} if ext in ('.txt', '.npy', '.npz') else {}
    with pytest.raises(EventFormatError, match=rf'{re.escape(str(path))}.*{index}.*{what}|'
                       rf'{re.escape(str(path))}.*{what}.*{index}'):
        read_events(path, **kwargs)


def test_h5_checks_the_whole_file_once_on_opening(tmp_path):
    """A NaN far outside the window read, and a decrease exactly at a chunk seam, are found when the file opens."""
    stream = _stream()
    t = stream.t.copy()
    t[N - 3] = np.nan  # after the window: a window read alone never sees it
    path = tmp_path / 'late_nan.h5'
    _write_h5(path, stream, t)
    with pytest.raises(EventFormatError, match=rf'late_nan\.h5 events/ts: timestamp {N - 3} is nan'):
        H5EventReader(path)
    with H5EventReader(path, validate=False) as reader:  # the check is what validate=True adds
        assert len(reader.read_window(*EXPOSURE)) > 0
        with pytest.raises(EventFormatError, match=f'timestamp {N - 3} is nan'):
            reader.check_timestamps(chunk_size=7)

    t = stream.t.copy()
    t[700] = t[699] - 1e-3  # index 700 starts the 101st chunk of 7
    path = tmp_path / 'seam.h5'
    _write_h5(path, stream, t)
    with H5EventReader(path, validate=False) as reader:
        for chunk in (7, 700, 701, N, 10 * N):
            with pytest.raises(EventFormatError, match=r'seam\.h5 events/ts: timestamps are not sorted: t\[700\]'):
                reader.check_timestamps(chunk_size=chunk)
    # a clean file passes in any chunking, ties included
    t = np.repeat(stream.t[::2], 2)
    _write_h5(tmp_path / 'ties.h5', stream, t)
    with H5EventReader(tmp_path / 'ties.h5') as reader:
        for chunk in (1, 2, 3, 1000):
            reader.check_timestamps(chunk_size=chunk)
        assert np.array_equal(reader.read_all().t, t)


def test_check_timestamps_chunks_agree_with_whole_array():
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 1, 1000))
    assert check_timestamps(t) == t[-1]
    assert check_timestamps(t[:0], previous=0.25) == 0.25
    t[517] = t[516] - 1e-6
    t[800] = np.nan  # a later NaN: the decrease comes first, in any chunking
    for size in (1, 10, 517, 999, 1000):
        previous = None
        with pytest.raises(EventFormatError, match=r'in f: timestamps are not sorted: t\[517\]'):
            for i0 in range(0, len(t), size):
                previous = check_timestamps(t[i0:i0 + size], 'f', offset=i0, previous=previous)
    t[300] = -np.inf  # now the first bad index is the infinity
    with pytest.raises(EventFormatError, match=r'in f: timestamp 300 is -inf'):
        check_timestamps(t, 'f')


def test_highrev_chunks_out_of_order_are_refused(tmp_path):
    """Chunks of one frame whose times go back across files: the index is in the concatenated stream."""
    stream = _stream(200)
    write_highrev_chunk(tmp_path / 'SEQ_00001_00.npz', stream[100:])
    write_highrev_chunk(tmp_path / 'SEQ_00001_01.npz', stream[:100])
    paths = sorted(str(p) for p in tmp_path.glob('*.npz'))
    with pytest.raises(EventFormatError, match=r'SEQ_00001_00\.npz.*not sorted: t\[100\]'):
        read_highrev_events(paths, H, W, drop_last=False)


@pytest.mark.parametrize('fault', ['nan', 'swapped'])
def test_infer_refuses_corrupt_h5_with_one_line_and_no_output(tmp_path, fault):
    """Before: a NaN mid-window used about half the events, swapped halves another window; both exit 0."""
    stream = _stream()
    t, bad = _corrupt(stream.t, fault)
    path = tmp_path / 'rec.h5'
    _write_h5(path, stream, t)
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, str(ROOT / 'basicsr' / 'infer.py'), '--events', str(path), '--method',
                           'EDI', '--out', str(out), '--no-progress'], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and str(path) in lines[0]
    assert (f'timestamp {bad} ' if fault == 'nan' else f't[{bad}]') in lines[0]
    assert not out.exists()


@pytest.fixture(scope='module')
def make_event_h5():
    spec = importlib.util.spec_from_file_location('make_event_h5',
                                                  ROOT / 'scripts' / 'data_preparation' / 'make_event_h5.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules['make_event_h5'] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('fault', ['nan', 'swapped'])
def test_make_event_h5_refuses_corrupt_raw_file(tmp_path, make_event_h5, fault):
    """Before: training voxels were written from such files with wrong polarity sums."""
    stream = _stream()
    t, bad = _corrupt(stream.t, fault)
    raw = tmp_path / 'raw' / 'seq.h5'
    raw.parent.mkdir()
    _write_h5(raw, stream, t)
    out = tmp_path / 'processed'
    index = f'timestamp {bad} is nan' if fault == 'nan' else rf't\[{bad}\]'
    with pytest.raises(EventFormatError, match=rf'{re.escape(str(raw))} events/ts: .*{index}'):
        make_event_h5.make_event_h5(str(raw.parent), str(out), window='exposure', progress=False)
    assert not any(p.suffix == '.h5' for p in out.iterdir())


REAL_TXT = Path('/work/realdata/esl_6c5cdab/data_example/camerashake_event_frame_txt')


@pytest.mark.skipif(not REAL_TXT.is_dir(), reason='the real ESL recordings are not extracted in /work/realdata')
def test_real_recordings_pass_the_check(tmp_path):
    """No false alarm on real camera data (ESL camera-shake event files, ties included), as text and as h5."""
    paths = sorted(REAL_TXT.glob('*.txt'))[:8]
    assert paths
    for path in paths:
        stream = read_events(path)
        assert len(stream) > 1000 and np.all(np.diff(stream.t) >= 0)
        h5 = tmp_path / f'{path.stem}.h5'
        write_event_h5(h5, stream)
        with H5EventReader(h5) as reader:
            reader.check_timestamps(chunk_size=4099)
            assert np.array_equal(reader.read_all().t, stream.t)
