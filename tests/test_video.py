"""MP4 videos: the writer (frame count, size, temporary file), the side-by-side frame and the event-only video."""
import numpy as np
import pytest

from basicsr.events import EventFormatError, EventStream, event_frame, write_event_h5, write_text_events
from basicsr.events.visualize import event_video_frames, write_event_video
from basicsr.events.windows import iter_event_windows, slice_windows
from basicsr.utils.video import Mp4Writer, read_video_info, side_by_side_frame
from fake_aedat import install_fake_aedat
from pipeline_utils import read_video_frames


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if '.tmp' in p.name)


def test_writer_frame_count_size_and_order(tmp_path):
    path = tmp_path / 'out' / 'video.mp4'
    with Mp4Writer(path, fps=12) as video:
        for k in range(7):
            video.add(np.full((41, 57, 3), 30 * k, np.uint8))  # odd sides: padded to 42 x 58
        assert not path.exists()  # written under a temporary name until closed
    info = read_video_info(path)
    assert (info['frames'], info['height'], info['width']) == (7, 42, 58)
    assert info['fps'] == pytest.approx(12)
    frames = read_video_frames(path)
    assert len(frames) == 7
    means = [f[:41, :57].mean() for f in frames]
    assert np.allclose(means, [30 * k for k in range(7)], atol=3)  # lossy codec, frames in order
    assert leftovers(path.parent) == []


def test_writer_gray_frames_and_bad_input(tmp_path):
    path = tmp_path / 'gray.mp4'
    with Mp4Writer(path) as video:
        video.add(np.zeros((16, 16), np.uint8))
        video.add(np.zeros((16, 16, 1), np.uint8))
    assert read_video_info(path)['frames'] == 2
    with pytest.raises(ValueError, match='ending in .mp4'):
        Mp4Writer(tmp_path / 'video.avi')
    with pytest.raises(ValueError, match='fps'):
        Mp4Writer(tmp_path / 'video.mp4', fps=0)
    with pytest.raises(ValueError, match='uint8'):
        Mp4Writer(tmp_path / 'video.mp4').add(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match='no frames'):
        Mp4Writer(tmp_path / 'empty.mp4').close()
    assert not (tmp_path / 'empty.mp4').exists() and leftovers(tmp_path) == []


def test_writer_size_change_or_error_keeps_the_earlier_video(tmp_path):
    path = tmp_path / 'video.mp4'
    with Mp4Writer(path) as video:
        for _ in range(3):
            video.add(np.zeros((20, 30, 3), np.uint8))
    earlier = path.read_bytes()
    with pytest.raises(ValueError, match=r'frame 2 is 20x32 but the first frame was 20x30'):
        with Mp4Writer(path) as video:
            video.add(np.zeros((20, 30, 3), np.uint8))
            video.add(np.zeros((20, 30, 3), np.uint8))
            assert leftovers(tmp_path) != []  # the new video grows under its temporary name
            video.add(np.zeros((20, 32, 3), np.uint8))
    assert leftovers(tmp_path) == [] and path.read_bytes() == earlier
    with pytest.raises(RuntimeError, match='stopped'):
        with Mp4Writer(path) as video:
            video.add(np.full((20, 30, 3), 255, np.uint8))
            raise RuntimeError('stopped')
    assert leftovers(tmp_path) == [] and path.read_bytes() == earlier


def test_side_by_side_frame_layout():
    blurry = np.full((24, 32, 3), 100, np.uint8)
    events = event_frame(np.array([3]), np.array([4]), np.array([1]), 24, 32)[:, :, ::-1]
    sharp = np.full((24, 32), 0.5, np.float32)  # gray float is accepted like the panel's other tiles
    a = side_by_side_frame(blurry, events, sharp, 'frame 0  t = 0.000 s', 'EFNet')
    b = side_by_side_frame(blurry, events, sharp, 'frame 12  t = 0.480 s', 'EFNet')
    assert a.shape == b.shape == (24 + 18 + 18, 3 * 32 + 2 * 4, 3) and a.dtype == np.uint8
    assert not np.array_equal(a[:18], b[:18]) and np.array_equal(a[18:], b[18:])  # only the frame line differs
    assert a[:18].min() < 128  # the frame line is drawn
    np.testing.assert_array_equal(a[36:, :32], blurry)
    np.testing.assert_array_equal(a[36:, 36:68], events)
    np.testing.assert_array_equal(a[36:, 72:], 128)


def moving_bar(seconds=0.5, rate=2000, height=30, width=40):
    """Events of a bar sweeping right: one event every 1/rate s at column (t * 80) mod width."""
    t = np.arange(int(seconds * rate)) / rate + 1.0
    x = (np.floor((t - 1.0) * 80) % width).astype(np.uint16)
    y = (np.arange(len(t)) % height).astype(np.uint16)
    p = np.where(np.arange(len(t)) % 3 == 0, -1, 1).astype(np.int8)
    return EventStream.from_arrays(x, y, t, p, height, width)


def test_windows_streamed_from_chunks_equal_windows_of_the_whole_stream(tmp_path):
    stream = moving_bar()
    whole = list(slice_windows([stream], 0.033))
    assert len(whole) == int((stream.t[-1] - stream.t[0]) // 0.033) + 1
    assert sum(len(ev) for *_, ev in whole) == len(stream)
    path = tmp_path / 'bar.h5'
    write_event_h5(path, stream)
    streamed = list(iter_event_windows(path, 0.033, chunk_size=37))
    assert [(w0, w1) for w0, w1, _ in streamed] == [(w0, w1) for w0, w1, _ in whole]
    for (w0, w1, a), (_, _, b) in zip(streamed, whole):
        assert np.array_equal(a.t, b.t) and np.array_equal(a.x, b.x) and np.all((a.t >= w0) & (a.t < w1))
    # a gap without events still gives its (empty) windows; t_end cuts the last window short
    gap = [stream[:100], EventStream.from_arrays([1], [1], [1.27], [1], 30, 40)]
    spans = [(round(w1 - w0, 6), len(ev)) for w0, w1, ev in slice_windows(gap, 0.05, t_start=1.0, t_end=1.33)]
    assert spans == [(0.05, 100), (0.05, 0), (0.05, 0), (0.05, 0), (0.05, 0), (0.05, 1), (0.03, 0)]
    with pytest.raises(EventFormatError, match='duration'):
        list(slice_windows([stream], 0))


def test_event_video_from_event_files(tmp_path):
    stream = moving_bar()
    windows = list(slice_windows([stream], 0.033))
    frames = list(event_video_frames(windows))
    assert len(frames) == len(windows)
    w0, w1, ev = windows[3]
    np.testing.assert_array_equal(frames[3][18:], event_frame(ev.x, ev.y, ev.p, 30, 40)[:, :, ::-1])
    assert frames[3][:18].min() < 128 and not np.array_equal(frames[0][:18], frames[3][:18])  # captioned per window
    for ext in ('h5', 'txt'):
        events = tmp_path / f'bar.{ext}'
        (write_event_h5 if ext == 'h5' else write_text_events)(events, stream)
        result = write_event_video(events, tmp_path / f'bar_{ext}.mp4', duration=0.033)
        assert result['frames'] == len(windows) and result['events'] == len(stream)
        info = read_video_info(result['path'])
        assert (info['frames'], info['height'], info['width']) == (len(windows), 30 + 18, 40)
        assert info['fps'] == pytest.approx(1 / 0.033, rel=1e-3)
    with pytest.raises(EventFormatError, match='no events to show'):
        write_event_video(tmp_path / 'bar.h5', tmp_path / 'late.mp4', t_start=5.0, t_end=5.1)
    assert not (tmp_path / 'late.mp4').exists() and leftovers(tmp_path) == []


def test_event_video_from_an_aedat4_recording(tmp_path, monkeypatch):
    dtype = [('t', '<u8'), ('x', '<u2'), ('y', '<u2'), ('on', '?')]
    stream = moving_bar(seconds=0.3)
    records = np.zeros(len(stream), dtype)
    records['t'] = np.round(stream.t * 1e6).astype(np.uint64)
    records['x'], records['y'], records['on'] = stream.x, stream.y, stream.p > 0
    packets = [{'stream_id': 0, 'events': records[i:i + 50]} for i in range(0, len(records), 50)]
    packets.insert(2, {'stream_id': 1, 'frame': None})  # other streams are skipped
    install_fake_aedat(monkeypatch, packets, {0: {'type': 'events', 'width': 40, 'height': 30},
                                              1: {'type': 'frame', 'width': 40, 'height': 30}})
    path = tmp_path / 'rec.aedat4'
    path.write_bytes(b'')  # the fake decoder replays the packets above
    result = write_event_video(path, tmp_path / 'rec.mp4', duration=0.05, fps=10)
    expected = int((stream.t[-1] - stream.t[0]) // 0.05) + 1
    assert (result['frames'], result['events']) == (expected, len(stream))
    info = read_video_info(tmp_path / 'rec.mp4')
    assert (info['frames'], info['height'], info['width'], round(info['fps'])) == (expected, 48, 40, 10)
    # packets out of time order cannot be streamed: a clear error, no video
    install_fake_aedat(monkeypatch, packets[3:] + packets[:2], {0: {'type': 'events', 'width': 40, 'height': 30}})
    with pytest.raises(EventFormatError, match='before the previous one ends'):
        write_event_video(path, tmp_path / 'bad.mp4')
    assert not (tmp_path / 'bad.mp4').exists() and leftovers(tmp_path) == []
