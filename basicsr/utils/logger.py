# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/utils/logger.py (Apache-2.0)
"""The ``basicsr`` logger, the training message line with ETA, and the TensorBoard writer."""
import datetime
import logging
import time

from basicsr.utils.dist_util import get_dist_info, master_only

_CONFIGURED = set()


def get_root_logger(logger_name='basicsr', log_level=logging.INFO, log_file=None):
    """Returns the project logger, configuring it on first use.

    Rank 0 logs at ``log_level`` to the console (and ``log_file``); other ranks log errors only.

    Args:
        logger_name (str): Logger name. Default: 'basicsr'.
        log_level (int): Level on rank 0. Default: ``logging.INFO``.
        log_file (str | None): Also write to this file (rank 0). Default: None.

    Returns:
        logging.Logger: The logger.
    """
    logger = logging.getLogger(logger_name)
    rank, _ = get_dist_info()
    fmt = logging.Formatter('%(asctime)s %(levelname)s: %(message)s')
    if logger_name not in _CONFIGURED:
        _CONFIGURED.add(logger_name)
        logger.propagate = False
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter('%(message)s'))
        stream.addFilter(lambda record: not getattr(record, 'file_only', False))
        logger.addHandler(stream)
    if rank != 0:
        logger.setLevel(logging.ERROR)
    else:
        logger.setLevel(log_level)
        if log_file is not None and not any(
                isinstance(h, logging.FileHandler) and h.baseFilename == log_file for h in logger.handlers):
            for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
                logger.removeHandler(handler)
                handler.close()
            file_handler = logging.FileHandler(log_file, 'w')
            file_handler.setFormatter(fmt)
            logger.addHandler(file_handler)
    return logger


def log_run_header(logger, options_text, log_file):
    """Writes the environment and the options to the log file only; the console gets one line saying where.

    Args:
        logger (logging.Logger): The project logger (from :func:`get_root_logger` with ``log_file``).
        options_text (str): The formatted options (``basicsr.utils.options.dict2str``).
        log_file (str | None): The log file (None on ranks other than 0, which log errors only).
    """
    logger.info(get_env_info(), extra={'file_only': True})
    logger.info(options_text, extra={'file_only': True})
    logger.info(f'Options and environment: {log_file}')


class AvgTimer:
    """Running average of recent durations (iteration time, data time).

    Args:
        window (int): Number of recent durations averaged. Default: 200.
    """

    def __init__(self, window=200):
        self.window = window
        self.durations = []
        self.last = time.time()

    def add(self, seconds):
        """Adds one measured duration."""
        self.durations = (self.durations + [seconds])[-self.window:]

    def record(self):
        """Adds the time since the previous ``record`` (or creation)."""
        now = time.time()
        self.add(now - self.last)
        self.last = now

    def get_avg_time(self):
        """Returns the mean duration in seconds (0 before the first one)."""
        return sum(self.durations) / len(self.durations) if self.durations else 0.0


EARLY_LINE_ITERS = 5


class MessageLogger:
    """Formats and logs the training message line and mirrors the values (losses, learning rate) to TensorBoard.

    Line format: ``[<name>..][epoch: e, iter: i, lr:(...)] [eta: ..., time (data): t (d)] l_xxx: v ...``.
    A line is due every ``print_freq`` iterations and once after the first :data:`EARLY_LINE_ITERS` iterations of
    a run, so the first ETA appears within seconds whatever ``print_freq`` is.

    Args:
        opt (dict): Options (``name``, ``logger.print_freq``, ``logger.use_tb_logger``, ``train.total_iter``).
        start_iter (int): First iteration of this run (after resume). Default: 1.
        tb_logger (SummaryWriter | None): TensorBoard writer. Default: None.
    """

    def __init__(self, opt, start_iter=1, tb_logger=None):
        self.exp_name = opt['name']
        self.interval = opt['logger']['print_freq']
        self.start_iter = start_iter
        self.max_iters = opt['train']['total_iter']
        self.use_tb_logger = opt['logger'].get('use_tb_logger', False)
        self.tb_logger = tb_logger
        self.start_time = time.time()
        self.logger = get_root_logger()

    def due(self, current_iter):
        """Whether iteration ``current_iter`` gets a message line.

        Args:
            current_iter (int): The iteration just finished.

        Returns:
            bool: True every ``print_freq`` iterations and after the run's first :data:`EARLY_LINE_ITERS`.
        """
        return current_iter % self.interval == 0 or current_iter - self.start_iter + 1 == EARLY_LINE_ITERS

    def reset_start_time(self):
        """Restarts the ETA clock (e.g. after the data loaders have started)."""
        self.start_time = time.time()

    @master_only
    def __call__(self, log_vars):
        """Logs one message.

        Args:
            log_vars (dict): ``epoch``, ``iter``, ``lrs`` (list), optional ``time``/``data_time`` (seconds per
                iteration) and any number of named values (losses prefixed ``l_`` go to ``losses/`` in
                TensorBoard).
        """
        log_vars = dict(log_vars)
        epoch, current_iter, lrs = log_vars.pop('epoch'), log_vars.pop('iter'), log_vars.pop('lrs')
        if self.use_tb_logger and self.tb_logger is not None and 'debug' not in self.exp_name:
            for group, lr in enumerate(lrs):
                self.tb_logger.add_scalar('learning_rate' if len(lrs) == 1 else f'learning_rate/{group}', lr,
                                          current_iter)
        message = f'[{self.exp_name[:5]}..][epoch:{epoch:3d}, iter:{current_iter:8,d}, lr:('
        message += ','.join(f'{v:.3e}' for v in lrs) + ')] '
        if 'time' in log_vars:
            iter_time, data_time = log_vars.pop('time'), log_vars.pop('data_time')
            done = max(current_iter - self.start_iter + 1, 1)
            time_sec_avg = (time.time() - self.start_time) / done
            eta = str(datetime.timedelta(seconds=int(time_sec_avg * (self.max_iters - current_iter))))
            message += f'[eta: {eta}, time (data): {iter_time:.3f} ({data_time:.3f})] '
        for key, value in log_vars.items():
            message += f'{key}: {value:.4e} '
            if self.use_tb_logger and self.tb_logger is not None and 'debug' not in self.exp_name:
                tag = f'losses/{key}' if key.startswith('l_') else key
                self.tb_logger.add_scalar(tag, value, current_iter)
        self.logger.info(message.rstrip())


@master_only
def init_tb_logger(log_dir):
    """Creates a TensorBoard ``SummaryWriter`` (imported lazily; rank 0 only).

    Args:
        log_dir (str): Event-file folder, ``tb_logger/<name>``.

    Returns:
        SummaryWriter: The writer.
    """
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(log_dir=log_dir)


def get_env_info():
    """Returns a short description of the software environment for the log."""
    import platform

    import numpy
    import torch

    from basicsr import __version__
    return (f'\nVersion Information:\n\tbasicsr: {__version__}\n\tPython: {platform.python_version()}'
            f'\n\tPyTorch: {torch.__version__}\n\tNumPy: {numpy.__version__}'
            f'\n\tCUDA available: {torch.cuda.is_available()}')
