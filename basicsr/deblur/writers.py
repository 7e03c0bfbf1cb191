"""Where inference results go: the output folder check, the result files, the per-frame records and the videos.

Per frame ``<out>/sharp/<name>.png``, ``<out>/events/<name>.png`` and ``<out>/panel/<name>.png`` (each written
atomically) and, for a method that records a decision per frame (EDI's threshold), that record's row in the
record's file (``<out>/thresholds.csv``), rows of other frames kept. For a whole recording, optionally the
side-by-side video ``<out>/side_by_side.mp4`` (:class:`SideBySideVideo`); for an event file, the event-only
visualisation video ``<out>/events.mp4`` (:func:`write_events_video`). Videos are written to a temporary name and
renamed when complete.
"""
import os.path as osp

from basicsr.utils.img_util import imwrite
from basicsr.utils.inference_errors import InferenceError
from basicsr.utils.output_check import OutputFolderError, check_writable
from basicsr.utils.video import Mp4Writer, side_by_side_frame

__all__ = ['RESULT_KINDS', 'VIDEO_FILE', 'EVENT_VIDEO_FILE', 'check_out', 'write_result', 'write_record',
           'SideBySideVideo', 'write_events_video']

RESULT_KINDS = ('sharp', 'events', 'panel')
VIDEO_FILE = 'side_by_side.mp4'  # blurry | events | sharp of every frame of a recording
EVENT_VIDEO_FILE = 'events.mp4'  # the events of an event file, window by window


def check_out(out_dir, names, overwrite=False, files=()):
    """Checks, before any inference, that the results can be written and would replace no earlier result.

    Args:
        out_dir (str): Output folder.
        names (list[str]): File stems that will be written (see :func:`write_result`).
        overwrite (bool): Allow replacing existing result files. Default: False.
        files (Iterable[str]): Other files the run writes in ``out_dir`` (e.g. :data:`VIDEO_FILE`). Default: ().

    Raises:
        InferenceError: For a folder that cannot be created or written, or existing results without ``overwrite``.
    """
    paths = [osp.join(out_dir, kind, f'{name}.png') for name in names for kind in RESULT_KINDS]
    paths += [osp.join(out_dir, name) for name in files]
    try:
        for folder in dict.fromkeys([out_dir] + [osp.dirname(p) for p in paths]):
            check_writable(folder, '--out')
    except OutputFolderError as err:
        raise InferenceError(str(err)) from None
    existing = [p for p in paths if osp.lexists(p)]
    if existing and not overwrite:
        raise InferenceError(f'--out {out_dir}: {len(existing)} result files of an earlier run would be replaced '
                             f'(e.g. {existing[0]}); pass --overwrite to replace them, or choose another --out')


def write_record(record, out_dir, name):
    """Writes a frame's record (what the method decided for it) to the record's file in ``out_dir``.

    Args:
        record (object): A frame record (see :mod:`basicsr.archs.method_spec`), e.g. EDI's threshold choice.
        out_dir (str): Output folder.
        name (str): The frame's name (its row).

    Returns:
        str: The written file.
    """
    return type(record).write_csv(osp.join(out_dir, record.file_name), [name], [record])


def write_result(result, out_dir, name):
    """Writes ``sharp/<name>.png``, ``events/<name>.png`` and ``panel/<name>.png`` atomically, and the frame's
    record when the method made one (EDI: its row of ``thresholds.csv``; other frames' rows are kept).

    Args:
        result (dict): Returned by :func:`basicsr.deblur.deblur`.
        out_dir (str): Output folder.
        name (str): File stem.

    Returns:
        dict: ``kind -> path`` of the written files; the record's file under its stem (``thresholds``).
    """
    paths = {}
    for kind in RESULT_KINDS:
        path = osp.join(out_dir, kind, f'{name}.png')
        imwrite(result[kind], path)
        paths[kind] = path
    record = result.get('record', result.get('threshold'))
    if record is not None:
        paths[osp.splitext(record.file_name)[0]] = write_record(record, out_dir, name)
    return paths


class SideBySideVideo:
    """Result writer: the side-by-side video (blurry | events | sharp, one video frame per deblurred frame, under a
    line naming the frame) of a run, ``<out_dir>/side_by_side.mp4``. Used as a context manager, an error inside
    the block leaves no video (and an earlier one as it was).

    Args:
        out_dir (str): Output folder.
        fps (float | None): Frames per second; None: 10. Default: None.
    """

    def __init__(self, out_dir, fps=None):
        try:
            self.video = Mp4Writer(osp.join(out_dir, VIDEO_FILE), 10.0 if fps is None else fps)
        except ValueError as err:
            raise InferenceError(f'--fps: {err}') from None
        self.path = self.video.path

    def add(self, image, result, frame_label):
        """Appends the video frame of one deblurred frame.

        Args:
            image (np.ndarray): The blurry frame as read.
            result (dict): Its result (see :func:`basicsr.deblur.deblur`): ``events``, ``sharp`` and ``label``
                (the sharp tile's caption: the method, for EDI with its threshold).
            frame_label (str): The line above the frame, e.g. ``'rec.h5 frame 3  t = 0.120 s'``.
        """
        self.video.add(side_by_side_frame(image, result['events'], result['sharp'], frame_label, result['label']))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return self.video.__exit__(exc_type, exc, tb)


def write_events_video(events_path, out_dir, window=0.033, fps=None, overwrite=False, **read_kwargs):
    """Writes the event-only visualisation video of an event file (e.g. an AEDAT4 recording without frames) to
    ``<out_dir>/events.mp4`` with :func:`basicsr.events.write_event_video`, after the output check.

    Args:
        events_path (str): Event file (any format of :func:`basicsr.events.read_events`).
        out_dir (str): Output folder.
        window (float): Seconds of events per video frame. Default: 0.033.
        fps (float | None): Frames per second; None plays in real time (``1 / window``). Default: None.
        overwrite (bool): Replace an earlier video (else refuse, see :func:`check_out`). Default: False.
        **read_kwargs: Passed to the reader (``height``, ``width``, ``time_scale`` for files without them).

    Returns:
        dict: ``path`` of the video, ``frames`` written, ``events`` drawn, ``t_start`` and ``t_end`` of the windows.

    Raises:
        InferenceError: For a bad ``window`` or ``fps`` or an output that cannot or may not be written.
        EventFormatError: For a file without events or with bad events.
    """
    from basicsr.events.visualize import write_event_video

    if not (isinstance(window, (int, float)) and window > 0):
        raise InferenceError(f'--video-window {window}: expected a positive number of seconds per video frame')
    if fps is not None and not fps > 0:
        raise InferenceError(f'--fps {fps}: expected a positive number of frames per second')
    check_out(out_dir, [], overwrite, [EVENT_VIDEO_FILE])
    return write_event_video(events_path, osp.join(out_dir, EVENT_VIDEO_FILE), duration=window, fps=fps,
                             **read_kwargs)
