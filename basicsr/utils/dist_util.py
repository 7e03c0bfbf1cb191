# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/utils/dist_util.py (Apache-2.0)
"""Process-group set-up for torchrun, ``torch.distributed.launch`` and Slurm, and rank helpers."""
import datetime
import functools
import os
import subprocess

import torch
import torch.distributed as dist


DEFAULT_TIMEOUT = 1800


def init_dist(launcher, backend=None, port=None, timeout=DEFAULT_TIMEOUT):
    """Initialises the default process group through the ``env://`` rendezvous.

    The device of a process is ``LOCAL_RANK`` (correct on multi-node runs). The multiprocessing start method is
    left to the platform.

    Args:
        launcher (str): ``'pytorch'`` (torchrun / torch.distributed.launch set the environment) or ``'slurm'``.
        backend (str | None): ``'nccl'``, ``'gloo'``...; None picks nccl with CUDA, else gloo. Default: None.
        port (int | None): Master port for Slurm when ``MASTER_PORT`` is unset. Default: None.
        timeout (float): Seconds a rendezvous or a collective operation (all-reduce, barrier, gather) waits for
            the other ranks before this rank stops with an error, so a stalled or dead peer ends the run instead
            of hanging it (``dist_params:timeout``). Default: 1800.
    """
    try:
        timeout = float(timeout)
        if not timeout > 0:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f'dist_params:timeout must be a positive number of seconds, got {timeout!r}') from None
    if launcher == 'slurm':
        _export_slurm_env(port)
    elif launcher != 'pytorch':
        raise ValueError(f'Invalid launcher type: {launcher!r}; expected one of none, pytorch, slurm')
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise RuntimeError(f'--launcher {launcher} needs the environment variable {key}; start the run with '
                               'torchrun, python -m torch.distributed.launch or srun')
    if backend is None:
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if backend == 'nccl':
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    dist.init_process_group(backend=backend, init_method='env://', timeout=datetime.timedelta(seconds=timeout))


def peer_failure_message(err, timeout=DEFAULT_TIMEOUT):
    """Describes a collective operation that failed because another rank stalled or died.

    Gloo and NCCL do not say which peer failed to answer; the message names this rank and the others, one of which
    is the culprit (with two processes, exactly the other one).

    Args:
        err (BaseException): The error raised by a collective operation.
        timeout (float): The run's ``dist_params:timeout``, for the message. Default: 1800.

    Returns:
        str | None: One sentence, or None when ``err`` is not a distributed time-out or lost connection.
    """
    rank, world = get_dist_info()
    text = str(err)
    lowered = text.lower()
    from_backend = isinstance(err, getattr(dist, 'DistError', ())) or any(
        name in lowered for name in ('gloo', 'nccl', 'c10d', 'process group'))
    if world < 2 or not isinstance(err, RuntimeError) or not from_backend:
        return None
    if 'timed out' in lowered or 'timeout' in lowered:
        what = f'waited dist_params:timeout = {float(timeout):g} s for'
    elif 'connection closed by peer' in lowered or 'connection reset' in lowered or 'broken pipe' in lowered:
        what = 'lost the connection to'
    else:
        return None
    others = [r for r in range(world) if r != rank]
    culprit = f'rank {others[0]}' if len(others) == 1 else f'one of ranks {", ".join(map(str, others))}'
    first_line = text.strip().splitlines()[0]
    return f'rank {rank} {what} {culprit}, which stalled or died (backend says: {first_line[-160:]})'


def _export_slurm_env(port):
    """Exports the torch.distributed environment variables from Slurm's."""
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    addr = _first_slurm_host(os.environ['SLURM_NODELIST'])
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ.setdefault('MASTER_ADDR', addr)
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['RANK'] = str(proc_id)
    if 'SLURM_LOCALID' in os.environ:
        os.environ['LOCAL_RANK'] = os.environ['SLURM_LOCALID']
    elif torch.cuda.is_available():
        os.environ['LOCAL_RANK'] = str(proc_id % torch.cuda.device_count())
    else:
        os.environ['LOCAL_RANK'] = '0'


def _first_slurm_host(node_list):
    """Returns the first host name of a Slurm node list (``scontrol show hostname``, run without a shell).

    Args:
        node_list (str): ``SLURM_NODELIST``, e.g. ``node[01-04]``.

    Returns:
        str: The first host, e.g. ``node01``.

    Raises:
        RuntimeError: ``scontrol`` is missing, fails or prints no host.
    """
    try:
        proc = subprocess.run(['scontrol', 'show', 'hostname', node_list], capture_output=True, text=True,
                              check=False)
    except OSError as err:
        raise RuntimeError(f'--launcher slurm needs scontrol to read SLURM_NODELIST: {err}') from None
    hosts = proc.stdout.split()
    if proc.returncode != 0 or not hosts:
        raise RuntimeError(f'scontrol show hostname {node_list!r} failed (exit {proc.returncode}): '
                           f'{proc.stderr.strip() or "no host printed"}')
    return hosts[0]


def get_dist_info():
    """Returns ``(rank, world_size)``; ``(0, 1)`` without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def get_local_rank():
    """Returns ``LOCAL_RANK`` from the environment (0 when unset)."""
    return int(os.environ.get('LOCAL_RANK', 0))


def master_only(func):
    """Decorator: run ``func`` on rank 0 only (other ranks get None)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        rank, _ = get_dist_info()
        if rank == 0:
            return func(*args, **kwargs)
        return None

    return wrapper


def barrier():
    """Synchronises all ranks; a no-op without distribution."""
    if get_dist_info()[1] > 1:
        dist.barrier()


def all_gather_objects(obj):
    """Gathers one picklable object from every rank.

    Args:
        obj: This rank's object.

    Returns:
        list: The objects of all ranks, in rank order (``[obj]`` without distribution).
    """
    world_size = get_dist_info()[1]
    if world_size == 1:
        return [obj]
    out = [None] * world_size
    dist.all_gather_object(out, obj)
    return out
