"""Event pictures: event frame, representation strip, optical-flow colours."""
import numpy as np
import pytest

from basicsr.events import EventFormatError, event_frame, flow_to_color, flow_wheel, representation_strip


def test_event_frame_colours_net_polarity():
    x = np.array([0, 1, 1, 2])
    y = np.array([0, 0, 0, 1])
    p = np.array([1, -1, 1, -1])
    img = event_frame(x, y, p, 2, 3)
    assert img.shape == (2, 3, 3) and img.dtype == np.uint8
    assert img[0, 0, 0] > 200 and img[0, 0, 2] < 100  # red: positive
    assert img[1, 2, 2] > 200 and img[1, 2, 0] < 100  # blue: negative
    assert np.array_equal(img[0, 1], [255, 255, 255])  # cancelled out
    assert np.array_equal(img[1, 0], [255, 255, 255])


def test_event_frame_over_image_and_size_check():
    gray = np.full((2, 3), 0.5, np.float32)
    img = event_frame(np.array([0]), np.array([0]), np.array([1]), 2, 3, image=gray, alpha=0.5)
    assert np.array_equal(img[1, 1], [128, 128, 128])
    assert img[0, 0, 0] > img[0, 0, 2]
    with pytest.raises(EventFormatError, match='image is'):
        event_frame(np.array([0]), np.array([0]), np.array([1]), 4, 3, image=gray)
    with pytest.raises(EventFormatError, match='outside'):
        event_frame(np.array([5]), np.array([0]), np.array([1]), 2, 3)


def test_representation_strip_layout_and_colours():
    rep = np.zeros((3, 4, 5), np.float32)
    rep[0, 0, 0] = 2.0
    rep[2, 1, 1] = -2.0
    strip = representation_strip(rep, gap=2)
    assert strip.shape == (4, 3 * 5 + 2 * 2, 3) and strip.dtype == np.uint8
    assert strip[0, 0, 0] > 200 and strip[0, 0, 2] < 100
    assert strip[1, 2 * 7 + 1, 2] > 200 and strip[1, 2 * 7 + 1, 0] < 100
    assert np.array_equal(strip[3, 3], [255, 255, 255])
    assert np.array_equal(strip[0, 5], [128, 128, 128])  # gap
    assert np.array_equal(representation_strip(rep.transpose(1, 2, 0), channel_axis=-1), strip)


def test_flow_colours_follow_direction_and_magnitude():
    flow = np.zeros((1, 4, 2), np.float32)
    flow[0, 1] = (1, 0)
    flow[0, 2] = (-1, 0)
    flow[0, 3] = (0.5, 0)
    img = flow_to_color(flow)
    assert np.array_equal(img[0, 0], [255, 255, 255])  # zero flow is white
    assert not np.array_equal(img[0, 1], img[0, 2])  # opposite directions differ
    assert (255 - img[0, 3].astype(int)).sum() < (255 - img[0, 1].astype(int)).sum()  # smaller is paler
    assert np.array_equal(flow_to_color(flow.transpose(2, 0, 1)), img)
    with pytest.raises(EventFormatError, match='flow must be'):
        flow_to_color(np.zeros((3, 3, 3)))


def test_flow_wheel_is_a_coloured_disc():
    wheel = flow_wheel(65)
    assert wheel.shape == (65, 65, 3) and wheel.dtype == np.uint8
    assert np.array_equal(wheel[0, 0], [255, 255, 255])
    assert np.array_equal(wheel[32, 32], [255, 255, 255])
    rim = [tuple(wheel[32, 63]), tuple(wheel[1, 32]), tuple(wheel[32, 1]), tuple(wheel[63, 32])]
    assert len(set(rim)) == 4
