"""Event file readers and writers: round trips, streaming windows and bad files."""
import sys

import h5py
import numpy as np
import pytest

import basicsr.events.h5_io as h5_io
from basicsr.events import (EventFormatError, EventStream, Frame, H5EventReader, read_aedat4, read_events,
                            read_highrev_events, read_npy_events, read_text_events, read_voxel_npz, write_event_h5,
                            write_events, write_highrev_chunk, write_npy_events, write_text_events, write_voxel_npz)
from fake_aedat import install_fake_aedat


def make_stream(n=500, height=9, width=13, seed=0, t0=10.0):
    rng = np.random.default_rng(seed)
    t = t0 + np.round(np.sort(rng.random(n)) * 0.1, 9)
    return EventStream.from_arrays(rng.integers(0, width, n), rng.integers(0, height, n), t,
                                   rng.choice([-1, 1], n), height, width)


def assert_same(a, b, t_tol=0.0):
    assert (a.height, a.width) == (b.height, b.width)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and np.array_equal(a.p, b.p)
    assert np.abs(a.t - b.t).max(initial=0) <= t_tol
    assert (a.x.dtype, a.t.dtype, a.p.dtype) == (np.uint16, np.float64, np.int8)


def test_h5_round_trip_with_frames(tmp_path):
    s = make_stream()
    img = np.random.default_rng(1).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    frames = [Frame(img, 10.03, 10.02, 10.04), Frame(img[..., 0], 10.07)]
    path = tmp_path / 'seq.h5'
    write_event_h5(path, s, frames=frames, sharp_frames=[Frame(img, 10.03)], source='test')
    assert [p.name for p in tmp_path.iterdir()] == ['seq.h5']
    with H5EventReader(path) as r:
        assert_same(r.read_all(), s)
        assert r.num_frames() == 2 and r.num_frames('sharp_images') == 1
        f0 = r.read_frame(0)
        assert np.array_equal(f0.image, img) and f0.exposure == (10.02, 10.04) and f0.timestamp == 10.03
        assert f0.attrs['type'] == 'color_bgr'
        assert f0.attrs['event_idx'] == np.searchsorted(s.t, 10.03) - 1
        assert r.read_frame(1).exposure is None and r.read_frame(1).attrs['type'] == 'greyscale'
        assert list(r.attrs['sensor_resolution']) == [9, 13] and r.attrs['num_events'] == 500
        assert r.attrs['num_pos'] == int((s.p > 0).sum())
    with h5py.File(path, 'r') as f:
        assert f['events/xs'].dtype == np.int16 and f['events/ps'].dtype == np.bool_
        assert f['images'].attrs['num_images'] == 2


def test_h5_window_reads_only_the_window(tmp_path, monkeypatch):
    monkeypatch.setattr(h5_io, '_BLOCK', 16)
    s = make_stream(n=3000)
    path = tmp_path / 'big.h5'
    write_event_h5(path, s)
    with H5EventReader(path) as r:
        for t0, t1 in [(10.02, 10.05), (9.0, 10.001), (10.05, 11.0), (s.t[100], s.t[200])]:
            w = r.read_window(t0, t1)
            assert_same(w, s.window(t0, t1, allow_empty=True))
        assert len(r.read_window(s.t[100], s.t[200], closed='both')) == 101
        assert len(r.read_window(20.0, 21.0)) == 0
        with pytest.raises(EventFormatError, match='holds no events'):
            r.read_window(20.0, 21.0, allow_empty=False)
        # searchsorted agrees with numpy on ties and ends
        for v in (s.t[0], s.t[1234], s.t[-1], 0.0, 99.0):
            for side in ('left', 'right'):
                assert r.searchsorted(v, side) == np.searchsorted(s.t, v, side)
        chunks = list(r.iter_chunks(700))
        assert [len(c) for c in chunks] == [700, 700, 700, 700, 200]
    read_slices = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        if isinstance(key, slice):
            read_slices.append((self.name, key.stop - key.start))
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, '__getitem__', spy)
    with H5EventReader(path) as r:
        # opening checks every timestamp once (events/ts only); a window read then reads only the window
        assert {name for name, _ in read_slices} == {'/events/ts'}
        read_slices.clear()
        w = r.read_window(10.04, 10.045)
    assert max(n for _, n in read_slices) <= max(16, len(w))


def test_h5_reads_event_utils_layout_with_01_polarity(tmp_path):
    path = tmp_path / 'raw.h5'
    with h5py.File(path, 'w') as f:
        f.create_dataset('events/xs', data=np.array([1, 2, 3], np.int16))
        f.create_dataset('events/ys', data=np.array([0, 1, 2], np.int16))
        f.create_dataset('events/ts', data=np.array([0.1, 0.2, 0.3]))
        f.create_dataset('events/ps', data=np.array([1, 0, 1], np.uint8))
    s = read_events(path)
    assert s.p.tolist() == [1, -1, 1] and s.shape == (3, 4)


def test_h5_bad_files_name_the_problem(tmp_path):
    junk = tmp_path / 'junk.h5'
    junk.write_bytes(b'not an hdf5 file at all')
    with pytest.raises(EventFormatError, match='junk.h5: cannot open'):
        H5EventReader(junk)
    nogroup = tmp_path / 'nogroup.h5'
    with h5py.File(nogroup, 'w') as f:
        f.create_dataset('images/image000000000', data=np.zeros((2, 2), np.uint8))
    with pytest.raises(EventFormatError, match='missing group "events"'):
        H5EventReader(nogroup)
    nokey = tmp_path / 'nokey.h5'
    with h5py.File(nokey, 'w') as f:
        for k in ('xs', 'ys', 'ts'):
            f.create_dataset(f'events/{k}', data=np.zeros(3))
    with pytest.raises(EventFormatError, match='missing dataset "events/ps"'):
        H5EventReader(nokey)
    unsorted = tmp_path / 'unsorted.h5'
    with h5py.File(unsorted, 'w') as f:
        f.create_dataset('events/xs', data=np.array([1, 2], np.int16))
        f.create_dataset('events/ys', data=np.array([0, 1], np.int16))
        f.create_dataset('events/ts', data=np.array([0.2, 0.1]))
        f.create_dataset('events/ps', data=np.array([1, 0], np.uint8))
        f.attrs['sensor_resolution'] = [4, 4]
    with pytest.raises(EventFormatError, match=r'unsorted.h5 events/ts: timestamps are not sorted: t\[1\]'):
        read_events(unsorted)


def test_text_round_trip_header_comments_and_time_scale(tmp_path):
    s = make_stream(n=50)
    path = tmp_path / 'ev.txt'
    write_text_events(path, s)
    lines = path.read_text().splitlines()
    assert lines[0] == '13 9' and lines[1].split()[3] in ('0', '1')
    assert_same(read_events(path), s, t_tol=1e-9)
    us = tmp_path / 'us.txt'
    us.write_text('# comment\n4 3\n# another\n1000 1 2 1\n2500 3 0 0\n\n')
    r = read_text_events(us, time_scale=1e-6)
    assert r.shape == (3, 4) and r.t.tolist() == [0.001, 0.0025] and r.p.tolist() == [1, -1]
    noheader = tmp_path / 'nh.txt'
    noheader.write_text('0.1 1 2 -1\n0.2 3 0 1\n')
    assert read_text_events(noheader, height=5, width=6).shape == (5, 6)
    bad = tmp_path / 'bad.txt'
    bad.write_text('0.1 1 2\n')
    with pytest.raises(EventFormatError, match='bad.txt: expected 4 columns'):
        read_text_events(bad)


def test_npy_round_trip_and_lowlight_float32(tmp_path):
    s = make_stream(n=80)
    path = tmp_path / 'ev.npy'
    write_npy_events(path, s)
    assert_same(read_npy_events(path, 9, 13), s)
    write_events(tmp_path / 'f32.npy', s, dtype=np.float32)
    r = read_events(tmp_path / 'f32.npy', height=9, width=13)
    assert_same(r, s, t_tol=1e-5)
    np.save(tmp_path / 'wrong.npy', np.zeros((5, 3)))
    with pytest.raises(EventFormatError, match=r'wrong.npy: expected an \(N, 4\)'):
        read_npy_events(tmp_path / 'wrong.npy')
    (tmp_path / 'trunc.npy').write_bytes((tmp_path / 'ev.npy').read_bytes()[:100])
    with pytest.raises(EventFormatError, match='trunc.npy'):
        read_npy_events(tmp_path / 'trunc.npy')


def test_highrev_chunks_swap_xy_and_drop_last(tmp_path):
    s = make_stream(n=300, height=9, width=13)
    parts = [s[0:100], s[100:250], s[250:300]]
    for i, part in enumerate(parts):
        write_highrev_chunk(tmp_path / f'SEQ_00001_{i:02d}.npz', part)
    with np.load(tmp_path / 'SEQ_00001_00.npz') as raw:
        assert raw['x'].shape == (100, 1) and np.array_equal(raw['x'][:, 0], s.y[:100])
        assert set(np.unique(raw['polarity'])) <= {0, 1}
    paths = sorted(tmp_path.glob('SEQ_00001_*.npz'))
    got = read_highrev_events(paths[::-1], height=9, width=13)
    assert_same(got, s[0:250])
    assert_same(read_highrev_events(paths, 9, 13, drop_last=False), s)
    assert_same(read_events(paths[2], height=9, width=13), s[250:300])
    np.savez(tmp_path / 'bad.npz', x=np.zeros(3), y=np.zeros(3), timestamp=np.zeros(3))
    with pytest.raises(EventFormatError, match=r"bad.npz: missing key\(s\) \['polarity'\]"):
        read_events(tmp_path / 'bad.npz')


def test_dispatcher_rejects_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(EventFormatError, match='unknown event file extension ".bin"'):
        read_events(tmp_path / 'x.bin')
    with pytest.raises(FileNotFoundError, match='no such event file'):
        read_events(tmp_path / 'missing.h5')


def test_aedat4_reader_with_fake_decoder(tmp_path, monkeypatch):
    path = tmp_path / 'rec.aedat4'
    path.write_bytes(b'fake')
    dtype = [('t', '<u8'), ('x', '<u2'), ('y', '<u2'), ('on', '?')]
    ev1 = np.array([(1_000_000, 1, 2, True), (1_000_500, 3, 4, False)], dtype=dtype)
    ev2 = np.array([(1_002_000, 5, 0, True)], dtype=dtype)
    pixels = np.arange(260 * 346, dtype=np.uint8).reshape(260, 346)
    frame = {'t': 1_001_000, 'begin_t': 1_000_000, 'end_t': 1_002_000, 'exposure_begin_t': 1_000_200,
             'exposure_end_t': 1_001_800, 'format': 'L', 'width': 346, 'height': 260, 'offset_x': 0,
             'offset_y': 0, 'pixels': pixels}
    packets = [{'stream_id': 0, 'events': ev1}, {'stream_id': 1, 'frame': frame}, {'stream_id': 2, 'imus': None},
               {'stream_id': 0, 'events': ev2}]
    streams = {0: {'type': 'events', 'width': 346, 'height': 260}, 1: {'type': 'frame', 'width': 346,
                                                                          'height': 260}, 2: {'type': 'imus'}}
    install_fake_aedat(monkeypatch, packets, streams)
    s, frames = read_aedat4(path)
    assert s.shape == (260, 346) and s.x.tolist() == [1, 3, 5] and s.p.tolist() == [1, -1, 1]
    assert np.allclose(s.t, [1.0, 1.0005, 1.002])
    assert len(frames) == 1 and np.array_equal(frames[0].image, pixels)
    assert frames[0].timestamp == pytest.approx(1.001)
    assert frames[0].exposure == pytest.approx((1.0002, 1.0018)) and frames[0].attrs['format'] == 'L'
    assert_same(read_events(path), s)


def test_aedat4_without_event_stream(tmp_path, monkeypatch):
    path = tmp_path / 'rec.aedat4'
    path.write_bytes(b'fake')
    install_fake_aedat(monkeypatch, [], {0: {'type': 'imus'}})
    with pytest.raises(EventFormatError, match='no stream of type "events"'):
        read_aedat4(path)


def test_aedat4_missing_package_names_pip_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'aedat', None)
    with pytest.raises(ImportError, match='pip install aedat'):
        read_aedat4(tmp_path / 'rec.aedat4')


def test_highrev_voxel_npz_round_trip(tmp_path):
    voxel = np.random.default_rng(4).standard_normal((5, 6, 6)).astype(np.float32)
    write_voxel_npz(tmp_path / 'SEQ_00001.npz', voxel)
    assert np.array_equal(read_voxel_npz(tmp_path / 'SEQ_00001.npz'), voxel)
    np.savez(tmp_path / 'other.npz', grid=voxel)
    with pytest.raises(EventFormatError, match='other.npz: missing key "voxel"'):
        read_voxel_npz(tmp_path / 'other.npz')
    (tmp_path / 'trunc.npz').write_bytes((tmp_path / 'SEQ_00001.npz').read_bytes()[:50])
    with pytest.raises(EventFormatError, match='trunc.npz: not a readable'):
        read_voxel_npz(tmp_path / 'trunc.npz')
