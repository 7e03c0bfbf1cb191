"""Running independent tasks (one per file or sample) in a process pool with a tqdm progress bar."""
import multiprocessing
import os

__all__ = ['imap_tasks', 'limit_worker_threads']


def limit_worker_threads():
    """Pool initializer: one OpenCV / torch thread per worker process, so workers do not oversubscribe the cores."""
    try:
        import cv2
        cv2.setNumThreads(1)
    except ImportError:
        pass
    import sys
    if 'torch' in sys.modules:
        sys.modules['torch'].set_num_threads(1)


def imap_tasks(func, tasks, workers=None, progress=True, desc=None, unit='task', start_method=None,
               initializer=limit_worker_threads, initargs=()):
    """Applies ``func`` to every task, in worker processes when ``workers > 1``, yielding results as they finish.

    Args:
        func (callable): A picklable top-level function of one task.
        tasks (Sequence): The tasks (picklable).
        workers (int | None): Processes; None uses every core; 1 (or a single task) runs in this process.
        progress (bool): Show a tqdm progress bar with ETA. Default: True.
        desc (str | None): Bar label. Default: None.
        unit (str): Bar unit. Default: ``'task'``.
        start_method (str | None): ``'spawn'``/``'forkserver'``/``'fork'``; None is spawn: forking a process that
            already runs threads (torch's OpenMP pool, tqdm's monitor) can deadlock the children, and CUDA needs
            spawn anyway. Default: None.
        initializer (callable | None): Run once in each worker. Default: :func:`limit_worker_threads`.
        initargs (tuple): Arguments of ``initializer``. Default: ().

    Yields:
        The results of ``func``, in completion order (unordered when parallel).
    """
    from tqdm import tqdm
    tasks = list(tasks)
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f'workers must be >= 1, got {workers}')
    with tqdm(total=len(tasks), desc=desc, unit=unit, disable=not progress, dynamic_ncols=True) as bar:
        if workers == 1 or len(tasks) <= 1:
            for task in tasks:
                result = func(task)
                bar.update(1)
                yield result
            return
        ctx = multiprocessing.get_context(start_method or 'spawn')
        with ctx.Pool(min(workers, len(tasks)), initializer=initializer, initargs=initargs) as pool:
            for result in pool.imap_unordered(func, tasks, chunksize=1):
                bar.update(1)
                yield result
