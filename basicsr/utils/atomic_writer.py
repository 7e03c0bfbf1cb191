"""The context-manager contract of the writers that build a file under a temporary name and rename it when done."""

__all__ = ['AtomicWriter']


class AtomicWriter:
    """Base of writers with ``close()`` (finish and rename into place) and ``abort()`` (delete the temporary file).

    Used as a context manager, a block that ends normally closes the writer and one that raises aborts it, so an
    error never leaves a half-written file under the final name.
    """

    def close(self):
        """Finishes the file and renames it into place (subclasses)."""
        raise NotImplementedError

    def abort(self):
        """Deletes the temporary file; the final name is left untouched (subclasses)."""
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False
