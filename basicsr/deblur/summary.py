"""What an inference run did, in a few lines for the console: frames written and where, the method, its checkpoint
or the per-frame decisions (EDI's thresholds), the video, the time per frame.

Example (``infer.py --events chelsea.h5 --method EDI --video --out results/rec``)::

    EDI deblurred 3 frames of chelsea.h5 in 2.10 s (0.70 s per frame)
      written to results/rec/: sharp/, events/, panel/ (000000.png .. 000002.png), thresholds.csv
      EDI thresholds: joint 0.165 for 3 frames
      video: results/rec/side_by_side.mp4
"""
import os.path as osp

from basicsr.deblur.writers import RESULT_KINDS

__all__ = ['run_summary', 'event_video_summary']


def _per_frame(seconds, frames):
    return f'{seconds:.2f} s ({seconds / max(frames, 1):.2f} s per frame)'


def run_summary(written, out_dir, method, source, seconds, checkpoint=None, video=None):
    """The summary of a deblurring run.

    Args:
        written (list[dict]): Per frame ``name``, the written ``kind -> path`` and the frame's ``record`` (as
            returned by :func:`basicsr.deblur.deblur_recording`).
        out_dir (str): The output folder.
        method (str): The method's name.
        source (str): What was deblurred (the event file, or the image).
        seconds (float): Wall time of the deblurring (after loading the method).
        checkpoint (str | None): The weights loaded (a checkpoint or an ONNX file); None for a method without
            parameters. Default: None.
        video (str | None): The video written, if any. Default: None.

    Returns:
        str: Lines without a trailing newline.
    """
    names = [w['name'] for w in written]
    frames = f'{len(names)} frame{"s" if len(names) != 1 else ""}'
    stems = f'{names[0]}.png' if len(names) == 1 else f'{names[0]}.png .. {names[-1]}.png' if names else 'none'
    folders = [f'{kind}/' for kind in RESULT_KINDS if any(kind in w for w in written)]
    files = sorted({osp.basename(p) for w in written for k, p in w.items()
                    if k not in RESULT_KINDS + ('name', 'record') and isinstance(p, str)})
    where = f'{", ".join(folders)} ({stems})'
    lines = [f'{method} deblurred {frames} of {osp.basename(str(source))} in {_per_frame(seconds, len(names))}',
             f'  written to {osp.join(out_dir, "")}: {", ".join([where] + files)}']
    records = [w['record'] for w in written if w.get('record') is not None]
    if records:
        kind = type(records[0])
        lines.append(f'  {kind.title}: {kind.summarize(records)}')
    if checkpoint:
        lines.append(f'  checkpoint: {checkpoint}')
    elif not records:
        lines.append('  checkpoint: none (the method has no weights)')
    if video:
        lines.append(f'  video: {video}')
    return '\n'.join(lines)


def event_video_summary(result, events_path, window, seconds):
    """The summary of an event-only video run.

    Args:
        result (dict): Returned by :func:`basicsr.deblur.writers.write_events_video`.
        events_path (str): The event file.
        window (float): Seconds of events per video frame.
        seconds (float): Wall time of the run.

    Returns:
        str: Lines without a trailing newline.
    """
    span = result['t_end'] - result['t_start']
    return (f'event video of {osp.basename(str(events_path))}: {result["frames"]} frames of {window:g} s '
            f'({result["events"]} events over {span:.3f} s) in {_per_frame(seconds, result["frames"])}\n'
            f'  video: {result["path"]}')
