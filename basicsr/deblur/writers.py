"""Where inference results go: the output folder check, the result files and the per-frame records.

Per frame ``<out>/sharp/<name>.png``, ``<out>/events/<name>.png`` and ``<out>/panel/<name>.png`` (each written
atomically) and, for a method that records a decision per frame (EDI's threshold), that record's row in the
record's file (``<out>/thresholds.csv``), rows of other frames kept.
"""
import os.path as osp

from basicsr.utils.img_util import imwrite
from basicsr.utils.inference_errors import InferenceError
from basicsr.utils.output_check import OutputFolderError, check_writable

__all__ = ['RESULT_KINDS', 'check_out', 'write_result', 'write_record']

RESULT_KINDS = ('sharp', 'events', 'panel')


def check_out(out_dir, names, overwrite=False):
    """Checks, before any inference, that the results can be written and would replace no earlier result.

    Args:
        out_dir (str): Output folder.
        names (list[str]): File stems that will be written (see :func:`write_result`).
        overwrite (bool): Allow replacing existing result files. Default: False.

    Raises:
        InferenceError: For a folder that cannot be created or written, or existing results without ``overwrite``.
    """
    paths = [osp.join(out_dir, kind, f'{name}.png') for name in names for kind in RESULT_KINDS]
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
