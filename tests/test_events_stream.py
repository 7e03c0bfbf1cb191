"""EventStream: conversion, validation messages and time-window slicing."""
import numpy as np
import pytest

from basicsr.events import EventFormatError, EventStream, concatenate_streams


def make(n=100, seed=0, height=10, width=14):
    rng = np.random.default_rng(seed)
    t = 5.0 + np.sort(rng.random(n))
    return EventStream.from_arrays(rng.integers(0, width, n), rng.integers(0, height, n), t,
                                   rng.integers(0, 2, n), height, width)


def test_from_arrays_converts_to_canonical_dtypes():
    s = EventStream.from_arrays(np.array([1, 2], np.int16), np.array([[0], [3]]), np.array([0.5, 0.7], np.float32),
                                np.array([0, 1]), 4, 5)
    assert (s.x.dtype, s.y.dtype, s.t.dtype, s.p.dtype) == (np.uint16, np.uint16, np.float64, np.int8)
    assert s.p.tolist() == [-1, 1] and s.y.tolist() == [0, 3]
    assert EventStream.from_arrays([1], [1], [0.0], [True]).p.tolist() == [1]
    inferred = EventStream.from_arrays([1, 6], [2, 0], [0.0, 1.0], [-1, 1])
    assert inferred.shape == (3, 7)


def test_from_array_n_by_4_and_to_array_round_trip():
    s = make()
    back = EventStream.from_array(s.to_array(), s.height, s.width)
    for k in 'xytp':
        assert np.array_equal(getattr(back, k), getattr(s, k))


@pytest.mark.parametrize('kwargs, message', [
    ({'t': [0.0, 2.0, 1.0]}, r'not sorted: t\[2\]'),
    ({'x': [0, 9, 1]}, r'x\[1\] = 9 is outside the sensor \(width 5'),
    ({'y': [0, 1, 4]}, r'y\[2\] = 4 is outside the sensor \(height 4'),
    ({'x': [0, -1, 1]}, 'outside the sensor'),
    ({'p': [1, 2, -1]}, r'polarity p\[1\] = 2'),
    ({'t': [0.0, np.nan, 1.0]}, 'NaN'),
    ({'x': [0.0, 1.5, 2.0]}, 'not an integer pixel'),
    ({'p': [1, -1]}, '"p" has 2 entries'),
])
def test_validation_names_the_problem(kwargs, message):
    fields = {'x': [0, 1, 2], 'y': [0, 1, 2], 't': [0.0, 1.0, 2.0], 'p': [1, -1, 1]}
    fields.update(kwargs)
    with pytest.raises(EventFormatError, match=message):
        EventStream.from_arrays(fields['x'], fields['y'], fields['t'], fields['p'], 4, 5, source='demo.txt')


def test_error_names_the_source():
    with pytest.raises(EventFormatError, match='in demo.h5'):
        EventStream.from_arrays([0, 1], [0, 0], [1.0, 0.0], [1, 1], 2, 2, source='demo.h5')


def test_sort_option_sorts_stably():
    s = EventStream.from_arrays([0, 1, 2], [0, 0, 0], [1.0, 0.0, 1.0], [1, -1, -1], 1, 3, sort=True)
    assert s.t.tolist() == [0.0, 1.0, 1.0] and s.x.tolist() == [1, 0, 2]


def test_window_is_a_view_found_by_binary_search():
    s = make(n=1000)
    t0, t1 = 5.2, 5.6
    w = s.window(t0, t1)
    assert np.shares_memory(w.t, s.t) and np.shares_memory(w.x, s.x)
    inside = (s.t >= t0) & (s.t < t1)
    assert np.array_equal(w.t, s.t[inside]) and np.array_equal(w.p, s.p[inside])
    both = s.window(s.t[10], s.t[20], closed='both')
    assert len(both) == 11
    assert len(s.window(s.t[10], s.t[20])) == 10


def test_empty_window_raises_unless_allowed():
    s = make()
    with pytest.raises(EventFormatError, match=r'holds no events .*allow_empty'):
        s.window(100.0, 101.0)
    assert len(s.window(100.0, 101.0, allow_empty=True)) == 0
    with pytest.raises(EventFormatError, match='t_end must not be before'):
        s.window(6.0, 5.0)
    with pytest.raises(EventFormatError, match='empty'):
        EventStream.empty(3, 3).t_first


def test_validate_rejects_wrong_dtypes():
    s = make()
    bad = EventStream(s.x.astype(np.int64), s.y, s.t, s.p, s.height, s.width)
    with pytest.raises(EventFormatError, match='"x" must be a 1-D uint16'):
        bad.validate()


def test_concatenate_streams():
    s = make(n=50)
    joined = concatenate_streams([s[:20], s[20:]])
    assert np.array_equal(joined.t, s.t) and len(joined) == 50
    with pytest.raises(EventFormatError, match='not sorted'):
        concatenate_streams([s[20:], s[:20]])
    with pytest.raises(EventFormatError, match='sensor sizes differ'):
        concatenate_streams([s, make(height=3)])
