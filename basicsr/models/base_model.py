# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/models/base_model.py (Apache-2.0)
"""Device placement, optimizers, schedulers, EMA, checkpoints and resume shared by every model."""
import copy
import os
import random
from collections import OrderedDict

import numpy as np
import torch
from torch.nn.parallel import DataParallel, DistributedDataParallel

from basicsr.models.lr_scheduler import SCHEDULERS
from basicsr.utils.dist_util import get_dist_info, get_local_rank, master_only
from basicsr.utils.logger import get_root_logger
from basicsr.utils.misc import atomic_torch_save

OPTIMIZERS = {
    'Adam': torch.optim.Adam,
    'AdamW': torch.optim.AdamW,
    'Adamax': torch.optim.Adamax,
    'SGD': torch.optim.SGD,
    'ASGD': torch.optim.ASGD,
    'RMSprop': torch.optim.RMSprop,
    'Rprop': torch.optim.Rprop,
}


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not match the network; the message names file and keys."""


def load_checkpoint(path, map_location='cpu'):
    """Reads a ``.pth``/``.state`` file with ``weights_only=True``.

    Args:
        path (str): File path.
        map_location: Device for the tensors. Default: 'cpu'.

    Returns:
        dict: The stored dictionary.

    Raises:
        CheckpointError: Missing, truncated or foreign file.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f'Checkpoint not found: {path}')
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f'Cannot read checkpoint {path} (truncated, or not a PyTorch weights file?): '
                              f'{type(err).__name__}: {err}') from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'Checkpoint {path} holds a {type(ckpt).__name__}, expected a dict')
    return ckpt


def select_state_dict(ckpt, param_key, path=''):
    """Picks the network weights out of a checkpoint dictionary.

    ``params_ema`` falls back to ``params``; a file that is itself a state dict is used as is.

    Args:
        ckpt (dict): Loaded checkpoint.
        param_key (str | None): Key of the weights, e.g. ``'params'``.
        path (str): File name for error messages. Default: ''.

    Returns:
        OrderedDict: State dict with any ``module.`` prefix removed.
    """
    if param_key and param_key in ckpt:
        state = ckpt[param_key]
    elif param_key == 'params_ema' and 'params' in ckpt:
        get_root_logger().warning(f'{path} has no "params_ema"; loading "params" instead.')
        state = ckpt['params']
    elif ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state = ckpt
    else:
        raise CheckpointError(f'Checkpoint {path} has no "{param_key}" entry (it has: {sorted(ckpt)[:10]}). '
                              'Set path:param_key_g to the right key, or convert the file with '
                              'scripts/convert_checkpoint.py.')
    return OrderedDict((k[7:] if k.startswith('module.') else k, v) for k, v in state.items())


class BaseModel:
    """Base of the training/testing models (BasicSR protocol).

    Args:
        opt (dict): Parsed options.
    """

    def __init__(self, opt):
        self.opt = opt
        use_cuda = opt.get('num_gpu', 0) != 0 and torch.cuda.is_available()
        self.device = torch.device(f'cuda:{get_local_rank()}' if use_cuda else 'cpu')
        self.is_train = opt['is_train']
        self.schedulers = []
        self.optimizers = []
        self.scaler = None  # torch.amp.GradScaler of fp16 training (train.amp), part of the training state
        self.logger = get_root_logger()

    # -- network placement -------------------------------------------------------------------------------------
    def model_to_device(self, net):
        """Moves a network to the device and wraps it in DDP (distributed) or DataParallel (several GPUs).

        Args:
            net (nn.Module): Network.

        Returns:
            nn.Module: The placed (possibly wrapped) network.
        """
        net = net.to(self.device)
        if not any(p.requires_grad for p in net.parameters()):
            return net  # nothing to synchronise (e.g. EDI); DDP refuses such modules
        if self.opt.get('dist'):
            device_ids = [self.device.index] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False))
        elif self.opt.get('num_gpu', 0) > 1 and self.device.type == 'cuda':
            net = DataParallel(net)
        return net

    @staticmethod
    def get_bare_model(net):
        """Returns the network inside a DDP/DataParallel wrapper."""
        if isinstance(net, (DataParallel, DistributedDataParallel)):
            net = net.module
        return net

    @master_only
    def print_network(self, net):
        """Logs the network's class and parameter count."""
        net = self.get_bare_model(net)
        n_params = sum(p.numel() for p in net.parameters())
        self.logger.info(f'Network: {net.__class__.__name__}, with parameters: {n_params:,d}')

    # -- optimization ------------------------------------------------------------------------------------------
    def get_optimizer(self, optim_opt, params):
        """Builds an optimizer from ``{type, lr, ...}`` without modifying the options.

        Args:
            optim_opt (dict): Optimizer options.
            params (iterable): Parameters to optimise.

        Returns:
            torch.optim.Optimizer: The optimizer.
        """
        optim_opt = copy.deepcopy(optim_opt)
        optim_type = optim_opt.pop('type', None)
        if optim_type not in OPTIMIZERS:
            raise KeyError(f'train:optim_g:type {optim_type!r} is not supported; choose from {sorted(OPTIMIZERS)}')
        if 'betas' in optim_opt:
            optim_opt['betas'] = tuple(optim_opt['betas'])
        return OPTIMIZERS[optim_type](params, **optim_opt)

    def setup_schedulers(self):
        """Builds one scheduler per optimizer from ``train.scheduler``."""
        train_opt = self.opt['train']
        if not train_opt.get('scheduler'):
            return
        sched_opt = copy.deepcopy(train_opt['scheduler'])
        sched_type = sched_opt.pop('type', None)
        if sched_type not in SCHEDULERS:
            raise KeyError(f'train:scheduler:type {sched_type!r} is not supported; choose from {sorted(SCHEDULERS)}')
        for optimizer in self.optimizers:
            self.schedulers.append(SCHEDULERS[sched_type](optimizer, **sched_opt))

    def _set_lr(self, lr_groups_l):
        for optimizer, lr_groups in zip(self.optimizers, lr_groups_l):
            for param_group, lr in zip(optimizer.param_groups, lr_groups):
                param_group['lr'] = lr

    def _get_init_lr(self):
        return [[group['initial_lr'] for group in optimizer.param_groups] for optimizer in self.optimizers]

    def update_learning_rate(self, current_iter, warmup_iter=-1):
        """Steps the schedulers (from iteration 2 on) and applies linear warm-up.

        Args:
            current_iter (int): Current iteration (1-based).
            warmup_iter (int): Warm-up length; -1 for none. Default: -1.
        """
        if current_iter > 1:
            for scheduler in self.schedulers:
                scheduler.step()
        if current_iter < warmup_iter:
            init_lr_g_l = self._get_init_lr()
            self._set_lr([[v / warmup_iter * current_iter for v in init_lr_g] for init_lr_g in init_lr_g_l])

    def get_current_learning_rate(self):
        """Returns the lr of the first parameter group of each optimizer."""
        return [optimizer.param_groups[0]['lr'] for optimizer in self.optimizers]

    # -- EMA ---------------------------------------------------------------------------------------------------
    def model_ema(self, decay=0.999):
        """Updates ``net_g_ema`` towards ``net_g``: ema = decay·ema + (1 − decay)·net.

        Args:
            decay (float): EMA decay. Default: 0.999.
        """
        net_g = self.get_bare_model(self.net_g)
        net_g_params = dict(net_g.named_parameters())
        with torch.no_grad():
            for name, param in self.net_g_ema.named_parameters():
                param.mul_(decay).add_(net_g_params[name].detach(), alpha=1 - decay)
            ema_buffers = dict(self.net_g_ema.named_buffers())
            for name, buf in net_g.named_buffers():
                ema_buffers[name].copy_(buf)

    # -- checkpoints -------------------------------------------------------------------------------------------
    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        """Writes ``models/<net_label>_<iter>.pth`` (``latest`` for -1) atomically.

        Args:
            net (nn.Module | list[nn.Module]): Network(s).
            net_label (str): e.g. ``'net_g'``.
            current_iter (int): Iteration; -1 writes ``<net_label>_latest.pth``.
            param_key (str | list[str]): Key(s) of the weights. Default: 'params'.
        """
        tag = 'latest' if current_iter == -1 else current_iter
        save_path = os.path.join(self.opt['path']['models'], f'{net_label}_{tag}.pth')
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError('The lengths of net and param_key differ')
        save_dict = {}
        for net_, key in zip(nets, keys):
            state = self.get_bare_model(net_).state_dict()
            save_dict[key] = OrderedDict(
                (k[7:] if k.startswith('module.') else k, v.detach().cpu()) for k, v in state.items())
        atomic_torch_save(save_dict, save_path)

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """Loads weights into a network, reporting mismatching keys by name.

        Args:
            net (nn.Module): Network (wrappers are unwrapped).
            load_path (str): ``.pth`` file.
            strict (bool): Require identical keys and shapes. Default: True.
            param_key (str): Key of the weights in the file; ``params_ema`` falls back to ``params``.
                Default: 'params'.

        Raises:
            CheckpointError: Unreadable file, or (strict) missing/unexpected keys or shape mismatches.
        """
        net = self.get_bare_model(net)
        state = select_state_dict(load_checkpoint(load_path), param_key, load_path)
        own = net.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        shape_diff = [f'{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}' for k in own
                      if k in state and state[k].shape != own[k].shape]
        problems = []
        if missing:
            problems.append(f'missing keys ({len(missing)}): {", ".join(missing[:8])}' +
                            (' ...' if len(missing) > 8 else ''))
        if unexpected:
            problems.append(f'unexpected keys ({len(unexpected)}): {", ".join(unexpected[:8])}' +
                            (' ...' if len(unexpected) > 8 else ''))
        if shape_diff:
            problems.append(f'shape mismatches ({len(shape_diff)}): {"; ".join(shape_diff[:5])}')
        if problems and strict:
            raise CheckpointError(f'{load_path} does not match {net.__class__.__name__}: ' + ' | '.join(problems) +
                                  '. Is it a checkpoint of another network or of other constructor options?')
        for problem in problems:
            self.logger.warning(f'Loading {load_path} non-strictly: {problem}')
        if shape_diff:
            for k in [k for k in own if k in state and state[k].shape != own[k].shape]:
                state.pop(k)
        net.load_state_dict(state, strict=strict)
        self.logger.info(f'Loaded {net.__class__.__name__} weights from {load_path} [{param_key}].')

    @master_only
    def save_training_state(self, epoch, current_iter):
        """Writes ``training_states/<iter>.state`` atomically (optimizers, schedulers, gradient scaler, RNG states).

        Args:
            epoch (int): Current epoch.
            current_iter (int): Current iteration.
        """
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
            'rng': {
                'torch': torch.get_rng_state(),
                'numpy': _numpy_state_to_plain(np.random.get_state()),
                'python': _python_state_to_plain(random.getstate()),
            },
        }
        if self.scaler is not None:
            state['scaler'] = self.scaler.state_dict()
        if torch.cuda.is_available():
            state['rng']['cuda'] = torch.cuda.get_rng_state_all()
        save_path = os.path.join(self.opt['path']['training_states'], f'{current_iter}.state')
        atomic_torch_save(state, save_path)

    def resume_training(self, resume_state):
        """Restores optimizers, schedulers, the gradient scaler and RNG states from a loaded training state.

        A state saved without a scaler (fp32 or bf16 training) resumed with one (fp16 AMP), or the other way round,
        is a change of recipe: the scaler then starts afresh (or is dropped) with a warning.

        Args:
            resume_state (dict): Loaded ``.state`` file.
        """
        if len(resume_state['optimizers']) != len(self.optimizers):
            raise CheckpointError('The training state has a different number of optimizers than the model')
        if len(resume_state['schedulers']) != len(self.schedulers):
            raise CheckpointError('The training state has a different number of schedulers than the model')
        for optimizer, state in zip(self.optimizers, resume_state['optimizers']):
            optimizer.load_state_dict(state)
        for scheduler, state in zip(self.schedulers, resume_state['schedulers']):
            scheduler.load_state_dict(state)
        saved_scaler = resume_state.get('scaler')
        if self.scaler is not None and saved_scaler is not None:
            self.scaler.load_state_dict(saved_scaler)
        elif self.scaler is not None:
            self.logger.warning('Resuming with a gradient scaler (train:amp fp16) from a state saved without one; '
                                'the scaler starts afresh')
        elif saved_scaler is not None:
            self.logger.warning('Resuming without a gradient scaler from a state saved with one (fp16 AMP); its state '
                                'is dropped')
        rng = resume_state.get('rng')
        rank, _ = get_dist_info()
        if rng and rank == 0:
            torch.set_rng_state(rng['torch'].cpu())
            np.random.set_state(_plain_to_numpy_state(rng['numpy']))
            random.setstate(_plain_to_python_state(rng['python']))
            if 'cuda' in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in rng['cuda']])

    def reduce_loss_dict(self, loss_dict):
        """Averages the losses over ranks and returns plain floats for logging.

        Args:
            loss_dict (OrderedDict[str, Tensor]): Losses of this rank.

        Returns:
            OrderedDict[str, float]: Mean losses.
        """
        with torch.no_grad():
            if self.opt.get('dist'):
                keys = list(loss_dict)
                values = torch.stack([loss_dict[k].detach().float() for k in keys])
                torch.distributed.all_reduce(values)
                values /= get_dist_info()[1]
                loss_dict = dict(zip(keys, values))
            return OrderedDict((k, float(v.mean())) for k, v in loss_dict.items())


def _numpy_state_to_plain(state):
    """NumPy RNG state as tensors and plain values (loadable with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = state
    return {'name': name, 'keys': torch.from_numpy(keys.astype(np.int64)), 'pos': int(pos),
            'has_gauss': int(has_gauss), 'cached': float(cached)}


def _plain_to_numpy_state(plain):
    return (plain['name'], plain['keys'].numpy().astype(np.uint32), plain['pos'], plain['has_gauss'],
            plain['cached'])


def _python_state_to_plain(state):
    version, internal, gauss = state
    return {'version': version, 'internal': torch.tensor(internal, dtype=torch.int64), 'gauss': gauss}


def _plain_to_python_state(plain):
    return (plain['version'], tuple(int(v) for v in plain['internal'].tolist()), plain['gauss'])
