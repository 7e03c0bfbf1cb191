"""Output folders checked before the work starts, so a read-only folder fails in one line, not after hours."""
import os
import uuid

__all__ = ['OutputFolderError', 'check_writable']


class OutputFolderError(OSError):
    """Raised when an output folder cannot be created or written; the message is one line naming the folder."""


def check_writable(folder, what='output folder'):
    """Proves that ``folder`` can hold new files, without creating it: a probe file is made and removed in the
    folder, or, when the folder does not exist yet, in its nearest existing parent (where it would be created).

    Args:
        folder (str | os.PathLike): The folder results will be written to.
        what (str): Named in the message (e.g. ``'--out'``). Default: ``'output folder'``.

    Raises:
        OutputFolderError: For a read-only folder (or parent), or a path through a file.
    """
    folder = os.path.abspath(os.fspath(folder))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OutputFolderError(f'{what} {folder}: cannot be created, {existing} is a file, not a folder')
    probe = os.path.join(existing, f'.write_probe.{uuid.uuid4().hex[:12]}')
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.remove(probe)
    except OSError as err:
        where = 'is not writable' if existing == folder else f'cannot be created: {existing} is not writable'
        raise OutputFolderError(f'{what} {folder} {where} ({err.strerror}); expected a folder you can write '
                                'to') from None

