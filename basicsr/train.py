# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/train.py (Apache-2.0)
"""Training entry point: ``python basicsr/train.py -opt options/train/<Dataset>/<name>.yml``."""
import math
import os.path as osp
import sys
import time

if __package__ in (None, ''):  # run as a script: make the repository importable
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from torch.utils.data import Sampler  # noqa: E402

from basicsr.data import build_dataloader, build_dataset  # noqa: E402
from basicsr.data.data_sampler import EnlargedSampler  # noqa: E402
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher  # noqa: E402
from basicsr.models import build_model  # noqa: E402
from basicsr.models.base_model import CheckpointError, load_checkpoint  # noqa: E402
from basicsr.utils.dist_util import DEFAULT_TIMEOUT, barrier, peer_failure_message  # noqa: E402
from basicsr.utils.logger import AvgTimer, MessageLogger, get_root_logger, init_tb_logger, log_run_header  # noqa: E402
from basicsr.utils.misc import (SaveError, check_resume, describe_saved, get_time_str, latest_state,  # noqa: E402
                                make_exp_dirs, mkdir_and_rename, remove_save_leftovers, set_random_seed)
from basicsr.utils.options import copy_opt_file, dict2str, parse_options  # noqa: E402


class _ResumeSampler(Sampler):
    """Wraps the training sampler so the first epoch after a resume skips the batches already trained on.

    Args:
        sampler (EnlargedSampler): The epoch sampler.
    """

    def __init__(self, sampler):
        self.sampler = sampler
        self.skip = 0

    def __iter__(self):
        indices = list(self.sampler)
        skip, self.skip = self.skip, 0
        return iter(indices[skip:])

    def __len__(self):
        return len(self.sampler) - self.skip

    def set_epoch(self, epoch):
        """Sets the epoch of the wrapped sampler (its shuffling seed)."""
        self.sampler.set_epoch(epoch)


def create_dataloaders(opt, logger):
    """Builds the training loader (with its sampler) and the validation loaders.

    Args:
        opt (dict): Parsed options.
        logger (logging.Logger): Logger.

    Returns:
        tuple: ``(train_loader, train_sampler, val_loaders, total_epochs, total_iters)``.
    """
    train_loader = train_sampler = None
    val_loaders = []
    for phase, dataset_opt in opt['datasets'].items():
        kind = dataset_opt['phase']
        if kind == 'train':
            ratio = dataset_opt.get('dataset_enlarge_ratio', 1)
            train_set = build_dataset(dataset_opt)
            train_sampler = _ResumeSampler(
                EnlargedSampler(train_set, opt['world_size'], opt['rank'], ratio, seed=opt['manual_seed']))
            train_loader = build_dataloader(train_set, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'],
                                            sampler=train_sampler, seed=opt['manual_seed'])
            if len(train_loader) == 0:
                raise ValueError(f'datasets:{phase}: {len(train_set)} samples × enlarge ratio {ratio} give no full '
                                 f'batch of {dataset_opt["batch_size_per_gpu"]} per process')
            total_iters = int(opt['train']['total_iter'])
            total_epochs = math.ceil(total_iters / len(train_loader))
            logger.info(f'Training statistics:\n\tNumber of train images: {len(train_set)}'
                        f'\n\tDataset enlarge ratio: {ratio}\n\tBatch size per gpu: {dataset_opt["batch_size_per_gpu"]}'
                        f'\n\tWorld size (gpu number): {opt["world_size"]}'
                        f'\n\tRequire iter number per epoch: {len(train_loader)}'
                        f'\n\tTotal epochs: {total_epochs}; iters: {total_iters}.')
        elif kind in ('val', 'test'):
            val_set = build_dataset(dataset_opt)
            val_loaders.append(build_dataloader(val_set, dataset_opt, num_gpu=opt['num_gpu'], dist=opt['dist'],
                                                sampler=None, seed=opt['manual_seed']))
            logger.info(f'Number of val images/folders in {dataset_opt["name"]}: {len(val_set)}')
        else:
            raise ValueError(f'datasets:{phase}: phase {kind!r} is not recognised (train, val, test)')
    if train_loader is None:
        raise ValueError('Training needs a dataset whose key starts with "train" under datasets')
    return train_loader, train_sampler, val_loaders, total_epochs, total_iters


def load_resume_state(opt):
    """Returns the training state to resume from (explicit ``path.resume_state`` or ``--auto_resume``), or None.

    Args:
        opt (dict): Parsed options; ``path.resume_state`` is filled in by ``--auto_resume``.

    Returns:
        dict | None: The loaded state.
    """
    if opt['auto_resume'] and not opt['path'].get('resume_state'):
        opt['path']['resume_state'] = latest_state(opt['path']['training_states'])
    path = opt['path'].get('resume_state')
    if not path:
        return None
    return load_checkpoint(path)


def _make_prefetcher(train_loader, opt):
    mode = opt['datasets']['train'].get('prefetch_mode') if 'train' in opt['datasets'] else None
    if mode == 'cuda' and torch.cuda.is_available():
        return CUDAPrefetcher(train_loader, opt)
    return CPUPrefetcher(train_loader)


def _validate(model, val_loaders, current_iter, tb_logger, opt):
    for val_loader in val_loaders:
        model.validation(val_loader, current_iter, tb_logger, (opt.get('val') or {}).get('save_img', False))


class RunStopped(Exception):
    """A run that stopped for a known reason (Ctrl-C, a stalled peer, a full disk); the message is one line.

    Args:
        message (str): What happened and what exists to resume from.
        exit_code (int): Exit status of the command. Default: 1.
    """

    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


def train_pipeline(root_path, argv=None):
    """Runs a training from the command line (or ``argv``), resumable and distributed.

    Args:
        root_path (str): Repository root: default base of ``experiments/``, ``tb_logger/``.
        argv (list[str] | None): Command-line arguments instead of ``sys.argv[1:]``. Default: None.

    Returns:
        BaseModel: The trained model.

    Raises:
        RunStopped: Ctrl-C, a peer that stalled or died (``dist_params:timeout``) or a checkpoint that could not be
            written; the message says at which iteration and what was saved.
    """
    opt, args = parse_options(root_path, is_train=True, argv=argv)
    progress = {'iter': 0}
    try:
        return _train(opt, args, progress)
    except KeyboardInterrupt:
        raise RunStopped(f'Interrupted at iteration {progress["iter"]}. {describe_saved(opt["path"])}',
                         exit_code=130) from None
    except SaveError as err:
        raise RunStopped(f'{err.strerror} (iteration {progress["iter"]}). {describe_saved(opt["path"])}') from None
    except RuntimeError as err:
        failure = peer_failure_message(err, (opt.get('dist_params') or {}).get('timeout', DEFAULT_TIMEOUT))
        if failure is None:
            raise
        raise RunStopped(f'Distributed run stopped at iteration {progress["iter"]}: {failure}. '
                         f'{describe_saved(opt["path"])}') from None


def _train(opt, args, progress):
    """The body of :func:`train_pipeline`; ``progress['iter']`` follows the current iteration."""
    torch.backends.cudnn.benchmark = True
    leftovers = remove_save_leftovers(opt['path']['experiments_root']) if opt['rank'] == 0 else []
    resume_state = load_resume_state(opt)
    if resume_state is None:
        make_exp_dirs(opt)
        if opt['rank'] == 0 and opt['logger'].get('use_tb_logger') and 'debug' not in opt['name']:
            mkdir_and_rename(opt['path']['tb_logger'])
    barrier()
    if opt['rank'] == 0:
        copy_opt_file(args.opt, opt['path']['experiments_root'])

    log_file = osp.join(opt['path']['log'], f'train_{opt["name"]}_{get_time_str()}.log')
    logger = get_root_logger(log_file=log_file if opt['rank'] == 0 else None)
    log_run_header(logger, dict2str(opt), log_file if opt['rank'] == 0 else None)
    if leftovers:
        logger.info(f'Removed {len(leftovers)} temporary file(s) of saves killed midway: {", ".join(leftovers)}')
    tb_logger = None
    if opt['logger'].get('use_tb_logger') and 'debug' not in opt['name']:
        tb_logger = init_tb_logger(log_dir=opt['path']['tb_logger'])
    if (opt['logger'].get('wandb') or {}).get('project'):
        logger.warning('logger:wandb is set but wandb logging is not supported here; using TensorBoard only.')

    set_random_seed(opt['manual_seed'] + opt['rank'])
    train_loader, train_sampler, val_loaders, total_epochs, total_iters = create_dataloaders(opt, logger)

    if resume_state:
        check_resume(opt, resume_state['iter'])
    model = build_model(opt)
    if resume_state:
        model.resume_training(resume_state)
        logger.info(f'Resuming training from epoch: {resume_state["epoch"]}, iter: {resume_state["iter"]}.')
        start_epoch, current_iter = resume_state['epoch'], resume_state['iter']
        progress['iter'] = current_iter
    else:
        start_epoch, current_iter = 0, 0

    msg_logger = MessageLogger(opt, current_iter + 1, tb_logger)
    prefetcher = _make_prefetcher(train_loader, opt)
    batches_per_epoch = len(train_sampler.sampler) // train_loader.batch_size
    batch_size = train_loader.batch_size
    train_sampler.skip = min(max(current_iter - start_epoch * batches_per_epoch, 0), batches_per_epoch) * batch_size
    logger.info(f'Start training from epoch: {start_epoch}, iter: {current_iter}')
    data_timer, iter_timer = AvgTimer(), AvgTimer()
    last_saved = current_iter if resume_state else None
    last_validated = None
    epoch = start_epoch
    val_freq = (opt.get('val') or {}).get('val_freq')
    for epoch in range(start_epoch, total_epochs + 1):
        if current_iter >= total_iters:
            break
        train_sampler.set_epoch(epoch)
        prefetcher.reset()
        tick = time.time()
        train_data = prefetcher.next()
        while train_data is not None and current_iter < total_iters:
            data_time = time.time() - tick
            current_iter += 1
            progress['iter'] = current_iter
            model.update_learning_rate(current_iter, warmup_iter=opt['train'].get('warmup_iter', -1))
            model.feed_data(train_data)
            model.optimize_parameters(current_iter)
            data_timer.add(data_time)
            iter_timer.record()
            if current_iter == 1:
                msg_logger.reset_start_time()
            if msg_logger.due(current_iter):
                log_vars = {'epoch': epoch, 'iter': current_iter, 'lrs': model.get_current_learning_rate(),
                            'time': iter_timer.get_avg_time(), 'data_time': data_timer.get_avg_time()}
                log_vars.update(model.get_current_log())
                msg_logger(log_vars)
            if current_iter % opt['logger']['save_checkpoint_freq'] == 0:
                logger.info('Saving models and training states.')
                model.save(epoch, current_iter)
                last_saved = current_iter
            if val_loaders and val_freq and current_iter % val_freq == 0:
                _validate(model, val_loaders, current_iter, tb_logger, opt)
                last_validated = current_iter
            tick = time.time()
            train_data = prefetcher.next()

    logger.info('End of training. Saving the latest model.')
    if last_saved != current_iter:
        model.save(epoch, current_iter)
    model.save(epoch=-1, current_iter=-1)
    if val_loaders and last_validated != current_iter:
        _validate(model, val_loaders, current_iter, tb_logger, opt)
    if tb_logger is not None:
        tb_logger.close()
    barrier()
    return model



def main(argv=None):
    """Console entry: trains, and turns a stopped run (Ctrl-C, NaN loss, bad input, a stalled peer, a full disk)
    into a one-line error and a non-zero exit.

    Args:
        argv (list[str] | None): Command-line arguments instead of ``sys.argv[1:]``. Default: None.
    """
    root_path = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), osp.pardir))
    try:
        train_pipeline(root_path, argv)
    except RunStopped as err:
        get_root_logger().error(f'Training stopped: {err}')
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        get_root_logger().error('Training stopped: interrupted before the first iteration.')
        sys.exit(130)
    except (FloatingPointError, KeyError, ValueError, OSError, CheckpointError) as err:
        get_root_logger().error(f'Training stopped: {type(err).__name__}: {err}')
        sys.exit(1)


if __name__ == '__main__':
    main()
