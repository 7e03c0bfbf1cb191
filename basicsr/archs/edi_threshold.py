"""Which contrast threshold EDI uses for each frame, and the record of that choice.

EDI needs the sensor's contrast threshold ``c``. It is given (the EDI option ``threshold``), estimated jointly over
the frames of a recording (or over windows of consecutive frames), estimated per frame, or, when no estimate is
possible, the documented fallback :data:`basicsr.events.edi.DEFAULT_THRESHOLD`. A fallback is never silent: it
raises a :class:`ThresholdWarning` naming the frame, the value used and the reason. Every choice is recorded beside
the outputs (:func:`write_thresholds_csv`) and in the panel label (:meth:`ThresholdChoice.label`).

The estimation itself (the energy, its search) is event maths and lives in :mod:`basicsr.events.edi`; this module
is part of the EDI method (``basicsr/archs/edi_arch.py``). :class:`ThresholdChoice` is EDI's *frame record* (see
:mod:`basicsr.archs.method_spec`): inference and ``basicsr/test.py`` caption, warn, summarise and write it without
knowing EDI. ``basicsr.models.edi_threshold`` re-exports these names (their former place).
"""
import csv
import math
import os
import os.path as osp
import warnings
from dataclasses import dataclass

import numpy as np

from basicsr.events.edi import DEFAULT_THRESHOLD, check_threshold, estimate_threshold
from basicsr.utils.inference_errors import InferenceWarning

__all__ = ['THRESHOLD_MODES', 'SOURCES', 'JOINT_MAX_FRAMES', 'ThresholdChoice', 'ThresholdWarning', 'choose_thresholds',
           'fallback_choices', 'summarize_thresholds', 'write_thresholds_csv', 'read_thresholds_csv',
           'DEFAULT_THRESHOLD', 'MAX_THRESHOLD', 'THRESHOLDS_FILE', 'check_plausible_threshold']

THRESHOLD_MODES = ('joint', 'per-frame')
SOURCES = ('given', 'joint', 'per-frame', 'fallback')
# Frames taken (evenly spread) from each joint window: the threshold is a sensor property, so a few frames pin it
# down, and reading every frame of a long recording at once would not fit in memory.
JOINT_MAX_FRAMES = 16
CSV_FIELDS = ('frame', 'threshold', 'source', 'reason')
THRESHOLDS_FILE = 'thresholds.csv'
# A DAVIS contrast threshold is about 0.1-0.5 (log intensity per event); above 2 one event would stand for a
# brightness ratio of e^2 = 7.4, which no event camera is biased for: such a value is a unit or typing mistake.
MAX_THRESHOLD = 2.0


def check_plausible_threshold(threshold, name='threshold'):
    """Validates a given contrast threshold: None (estimate it) or a number in ``(0, MAX_THRESHOLD]``.

    Args:
        threshold (float | None): The threshold.
        name (str): The option named in the message. Default: ``'threshold'``.

    Returns:
        float | None: The threshold as float, or None.

    Raises:
        ValueError: Naming the option, the value and the expected range.
    """
    threshold = check_threshold(threshold, name)
    if threshold is not None and threshold > MAX_THRESHOLD:
        raise ValueError(f'{name}={threshold} is not a plausible contrast threshold: expected a number in '
                         f'(0, {MAX_THRESHOLD}] (log intensity per event; DAVIS sensors are about 0.1-0.5)')
    return threshold


class ThresholdWarning(InferenceWarning):
    """EDI could not estimate a threshold for a frame and fell back to :data:`DEFAULT_THRESHOLD`."""


@dataclass
class ThresholdChoice:
    """The contrast threshold EDI used for one frame: EDI's frame record (see :mod:`basicsr.archs.method_spec`).

    Args:
        value (float): The threshold (log intensity per event).
        source (str): ``'given'``, ``'joint'`` (estimated over several frames), ``'per-frame'`` or ``'fallback'``.
        reason (str): Why a fallback was needed, or what the estimate covered. Default: ``''``.
    """
    value: float
    source: str
    reason: str = ''

    file_name = THRESHOLDS_FILE  # inference writes <out>/thresholds.csv, basicsr/test.py <set>_thresholds.csv
    title = 'EDI thresholds'

    def label(self):
        """str: Short caption for panels, e.g. ``'EDI c=0.231 joint'``."""
        return f'EDI c={self.value:.3f} {self.source}'

    def warning(self, name):
        """What a user must be told about this frame's threshold.

        Args:
            name (str): The frame's name.

        Returns:
            str: The fallback message, or ``''`` for an estimated or given threshold.
        """
        if self.source != 'fallback':
            return ''
        return (f'EDI: no threshold estimate for {name} ({self.reason}); using the fallback threshold {self.value} '
                '(basicsr.events.edi.DEFAULT_THRESHOLD)')

    @staticmethod
    def summarize(records):
        """One line on the thresholds of a run (see :func:`summarize_thresholds`).

        Args:
            records (list[ThresholdChoice]): The choices.

        Returns:
            str: The summary.
        """
        return summarize_thresholds(records)

    @staticmethod
    def write_csv(path, names, records):
        """Writes the frames' rows to a thresholds file (see :func:`write_thresholds_csv`).

        Args:
            path (str): The ``.csv`` file.
            names (list[str]): Frame names.
            records (list[ThresholdChoice]): Their thresholds.

        Returns:
            str: The path.
        """
        return write_thresholds_csv(path, names, records)


def fallback_choices(names, reason):
    """Falls back to :data:`DEFAULT_THRESHOLD` for the named frames, with one warning naming them.

    Args:
        names (list[str]): Frame names.
        reason (str): Why there is no estimate.

    Returns:
        list[ThresholdChoice]: One fallback choice per frame.
    """
    what = names[0] if len(names) == 1 else f'the {len(names)} frames {names[0]} .. {names[-1]}'
    warnings.warn(f'EDI: no threshold estimate for {what} ({reason}); using the fallback threshold '
                  f'{DEFAULT_THRESHOLD} (basicsr.events.edi.DEFAULT_THRESHOLD)', ThresholdWarning, stacklevel=3)
    return [ThresholdChoice(DEFAULT_THRESHOLD, 'fallback', reason) for _ in names]


def _windows(count, window):
    """Consecutive index ranges of ``window`` frames (0: one range over all)."""
    size = count if not window or window <= 0 else int(window)
    return [range(start, min(start + size, count)) for start in range(0, count, max(size, 1))]


def _spread(indices, limit):
    """At most ``limit`` indices evenly spread over ``indices``."""
    if len(indices) <= limit:
        return list(indices)
    picks = np.unique(np.round(np.linspace(0, len(indices) - 1, limit)).astype(int))
    return [indices[k] for k in picks]


def _estimate(samples, options):
    """``(value, reason)`` of :func:`estimate_threshold`; value NaN when there is no estimate."""
    estimate = estimate_threshold(samples, per_frame=False, **options)
    return float(estimate.value), estimate.reason or ''


def choose_thresholds(names, load_sample, given=None, mode='joint', window=0, options=None):
    """Chooses the contrast threshold of every frame.

    Args:
        names (list[str]): Frame names (for warnings and the record), in recording order.
        load_sample (Callable[[int], tuple]): Frame index -> ``(blurry, x, y, t, p, t_start, t_end)``, blurry a
            linear float image (H, W) or (H, W, C), ``t`` in seconds (see
            :func:`basicsr.events.edi.estimate_threshold`). Only the frames an estimate uses are loaded.
        given (float | None): A fixed threshold (recorded as ``'given'``); None estimates. Default: None.
        mode (str): ``'joint'``: one estimate per window of ``window`` consecutive frames (at most
            :data:`JOINT_MAX_FRAMES` of them, evenly spread, enter the estimate); ``'per-frame'``: one per frame.
            Default: ``'joint'``.
        window (int): Frames per joint estimate; 0 takes the whole recording. Default: 0.
        options (dict | None): Keyword options of :func:`basicsr.events.edi.estimate_threshold`. Default: None.

    Returns:
        list[ThresholdChoice]: One per frame. Frames without an estimate get :data:`DEFAULT_THRESHOLD` with a
        :class:`ThresholdWarning`.

    Raises:
        ValueError: For an unknown mode or a negative window.
    """
    if mode not in THRESHOLD_MODES:
        raise ValueError(f'threshold mode {mode!r}: expected one of {list(THRESHOLD_MODES)}')
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 0:
        raise ValueError(f'threshold window {window!r}: expected a number of frames >= 0 (0 = the whole recording)')
    if given is not None:
        value = check_plausible_threshold(given)
        return [ThresholdChoice(value, 'given') for _ in names]
    options = dict(options or {})
    choices = []
    if mode == 'per-frame':
        for index, name in enumerate(names):
            value, reason = _estimate([load_sample(index)], options)
            choices += (fallback_choices([name], reason or 'no estimate') if math.isnan(value) else
                        [ThresholdChoice(value, 'per-frame')])
        return choices
    for frames in _windows(len(names), window):
        used = _spread(frames, JOINT_MAX_FRAMES)
        value, reason = _estimate([load_sample(k) for k in used], options)
        span = names[frames[0]] if len(frames) == 1 else f'{names[frames[0]]} .. {names[frames[-1]]}'
        if math.isnan(value):
            choices += fallback_choices([names[k] for k in frames], f'joint estimate over {len(used)} frames: '
                                        f'{reason or "no estimate"}')
        else:
            note = f'estimated over {len(used)} of the {len(frames)} frames {span}'
            choices += [ThresholdChoice(value, 'joint', note) for _ in frames]
    return choices


def read_thresholds_csv(path):
    """Reads a thresholds file written by :func:`write_thresholds_csv`.

    Args:
        path (str): The ``.csv`` file.

    Returns:
        dict[str, ThresholdChoice]: Frame name -> choice, in file order (empty if the file does not exist).
    """
    if not osp.isfile(path):
        return {}
    with open(path, newline='', encoding='utf-8') as f:
        return {row['frame']: ThresholdChoice(float(row['threshold']), row['source'], row.get('reason') or '')
                for row in csv.DictReader(f)}


def write_thresholds_csv(path, names, choices):
    """Writes (atomically) the threshold of each frame: ``frame,threshold,source,reason``.

    Rows of other frames already in the file are kept (several single-frame runs into one folder), rows of the same
    frames are replaced.

    Args:
        path (str): The ``.csv`` file.
        names (list[str]): Frame names.
        choices (list[ThresholdChoice]): Their thresholds.

    Returns:
        str: The path.
    """
    rows = read_thresholds_csv(path)
    rows.update(zip(names, choices))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for name, choice in rows.items():
            writer.writerow([name, f'{choice.value:.6g}', choice.source, choice.reason])
    os.replace(tmp, path)
    return path


def summarize_thresholds(choices):
    """One line on the thresholds of a run, e.g. ``'joint 0.231 for 12 frames; fallback 0.25 for 2 frames'``.

    Args:
        choices (list[ThresholdChoice]): The choices.

    Returns:
        str: The summary.
    """
    parts = []
    for source in SOURCES:
        values = [c.value for c in choices if c.source == source]
        if values:
            lo, hi = min(values), max(values)
            shown = f'{lo:.3g}' if lo == hi else f'{lo:.3g}-{hi:.3g}'
            parts.append(f'{source} {shown} for {len(values)} frame{"s" if len(values) > 1 else ""}')
    return '; '.join(parts) if parts else 'no frames'
