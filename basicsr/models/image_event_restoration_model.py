"""The one restoration model: feeds any registered network by name and applies losses to named outputs.

EFNet (``[out_1, out_2]`` against ``frame_gt``) and the low-light network (``F``, ``Bi_clean``, ``S`` against their
targets) are both option files of this class, not copies of it.
"""
import copy
from collections import OrderedDict

import torch

from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.models.base_model import BaseModel
from basicsr.models.inference import forward_padded, forward_tiled
from basicsr.models.validation import run_validation
from basicsr.utils.misc import describe_saved
from basicsr.utils.precision import autocast, autocast_forward, resolve_amp, resolve_precision, to_float32
from basicsr.utils.registry import MODEL_REGISTRY

DEFAULT_IO = {'inputs': {'x': 'lq'}, 'outputs': ['out'], 'result': 'out', 'gt': 'gt'}
# Defaults of train options a network may replace with its own ``train_defaults`` (EFNet: clipping at 0.01).
TRAIN_DEFAULTS = {'use_grad_clip': False, 'grad_clip_norm': 0.01}


def network_io(opt, net):
    """Returns how the model wires a network: option ``network_io`` over the network's ``io`` attribute.

    Args:
        opt (dict): Options; ``network_io`` may override any of ``inputs``, ``outputs``, ``result``, ``gt``.
        net (nn.Module): The bare network.

    Returns:
        dict: ``{'inputs': {arg: batch key}, 'outputs': [names], 'result': name, 'gt': batch key}``.
    """
    io = copy.deepcopy(getattr(net, 'io', DEFAULT_IO))
    io.update(copy.deepcopy(opt.get('network_io') or {}))
    if io['result'] not in io['outputs']:
        raise ValueError(f'network_io: result {io["result"]!r} is not one of the outputs {io["outputs"]}')
    return io


@MODEL_REGISTRY.register()
class ImageEventRestorationModel(BaseModel):
    """Trains, validates and tests a restoration network on images and events.

    Options read besides the BasicSR ones:
        ``network_io``: overrides the network's own wiring (``inputs`` = forward argument → batch key,
        ``outputs``, ``result``, ``gt``).
        ``train.losses``: list of ``{type, loss_weight, pred: <output or list>, target: <batch key or ~>, ...}``;
        a missing target means the ground truth of the result; ``target: ~`` (with ``no_target: true``) calls
        ``loss(pred)``. ``train.pixel_opt`` (EFNet/BasicSR) applies one loss to every output against the ground
        truth; ``train.perceptual_opt`` to the result.
        ``train.use_grad_clip`` with ``train.grad_clip_norm`` (default False and 0.01, unless the network declares
        other defaults in its ``train_defaults``: EFNet clips at 0.01, as its recipes rely on).
        ``train.require_pretrained``: refuse to train without ``path.pretrain_network_g`` (fine-tuning recipes).
        ``train.amp: {enabled, dtype: bf16|fp16}``: mixed-precision training (fp16 on CUDA with a gradient
        scaler, whose state is saved with the training state).
        ``val.grids``/``val.crop_size`` (tiled inference), ``val.max_minibatch``, ``val.size_multiple``,
        ``val.precision`` (``fp32|bf16|fp16``, validation and ``test.py``; outputs are fp32 again before metrics).
        The dataset option ``use_mask`` decides whether a ``mask`` in the batch is given to the network.

    Args:
        opt (dict): Parsed options.
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.net_g = build_network(opt['network_g'])
        self.io = network_io(opt, self.net_g)
        if self.is_train and opt['path'].get('pretrain_network_g') is None and hasattr(self.net_g, 'init_weights'):
            self.net_g.init_weights()  # the method's own initialisation, for training from scratch (DDP syncs it)
        self.net_g = self.model_to_device(self.net_g)
        self.print_network(self.net_g)

        path = opt['path']
        load_path = path.get('pretrain_network_g')
        if load_path is not None:
            param_key = path.get('param_key_g', path.get('param_key', 'params'))
            self.load_network(self.net_g, load_path, path.get('strict_load_g', True), param_key)
        self.use_mask = True
        self.val_dtype = resolve_precision((opt.get('val') or {}).get('precision', 'fp32'), self.device,
                                           'val:precision', self.logger)
        if self.is_train:
            self.init_training_settings()

    # -- training set-up ---------------------------------------------------------------------------------------
    def init_training_settings(self):
        """Builds EMA, losses, optimizer and scheduler from ``train``."""
        self.net_g.train()
        train_opt = self.opt['train']
        if train_opt.get('require_pretrained') and self.opt['path'].get('pretrain_network_g') is None:
            raise ValueError('train:require_pretrained is set: this recipe fine-tunes a trained network, so set '
                             'path:pretrain_network_g to its checkpoint (e.g. the GoPro EFNet, '
                             'experiments/pretrained_models/EFNet-GoPro.pth) instead of starting from scratch')
        train_set = self.opt['datasets'].get('train', {})
        self.use_mask = bool(train_set.get('use_mask', False))
        self.ema_decay = train_opt.get('ema_decay', 0) or 0
        if self.ema_decay > 0:
            self.net_g_ema = copy.deepcopy(self.get_bare_model(self.net_g)).eval()
            load_path = self.opt['path'].get('pretrain_network_g')
            if load_path is not None:
                self.load_network(self.net_g_ema, load_path, self.opt['path'].get('strict_load_g', True),
                                  'params_ema')
            for p in self.net_g_ema.parameters():
                p.requires_grad_(False)
        self.losses = self._build_losses(train_opt)
        if not self.losses:
            raise ValueError('train: no loss configured; set train:losses (or pixel_opt / perceptual_opt)')
        defaults = {**TRAIN_DEFAULTS, **getattr(self.get_bare_model(self.net_g), 'train_defaults', {})}
        self.use_grad_clip = train_opt.get('use_grad_clip', defaults['use_grad_clip'])
        self.grad_clip_norm = train_opt.get('grad_clip_norm', defaults['grad_clip_norm'])
        self.amp_dtype, use_scaler = resolve_amp(train_opt.get('amp'), self.device, self.logger)
        if use_scaler:
            self.scaler = torch.amp.GradScaler(self.device.type)
        self.setup_optimizers()
        self.setup_schedulers()

    def _build_losses(self, train_opt):
        """Returns ``[(log name, loss module, [output names], target key or None)]``."""
        losses = []
        gt = self.io['gt']
        if train_opt.get('pixel_opt'):
            losses.append(('l_pix', build_loss(train_opt['pixel_opt']), list(self.io['outputs']), gt))
        if train_opt.get('perceptual_opt'):
            losses.append(('l_percep', build_loss(train_opt['perceptual_opt']), [self.io['result']], gt))
        for i, loss_opt in enumerate(train_opt.get('losses') or []):
            preds = loss_opt.get('pred', self.io['result'])
            preds = preds if isinstance(preds, list) else [preds]
            unknown = [p for p in preds if p not in self.io['outputs']]
            if unknown:
                raise KeyError(f'train:losses[{i}]: pred {unknown} is not an output of the network '
                               f'(outputs: {self.io["outputs"]})')
            target = None if loss_opt.get('no_target') else loss_opt.get('target', gt)
            name = loss_opt.get('name') or f'l_{"_".join(preds)}_{loss_opt["type"]}'
            losses.append((name, build_loss(loss_opt), preds, target))
        return losses

    def setup_optimizers(self):
        """Builds ``optim_g`` over the trainable parameters (networks without parameters need none)."""
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        if not params:
            return
        if not self.opt['train'].get('optim_g'):
            raise KeyError('train:optim_g is required to train a network with parameters')
        self.optimizer_g = self.get_optimizer(self.opt['train']['optim_g'], params)
        self.optimizers.append(self.optimizer_g)

    # -- data and forward --------------------------------------------------------------------------------------
    def feed_data(self, data, use_mask=None):
        """Moves a batch to the device.

        Args:
            data (dict): Batch from a dataset (tensors plus names).
            use_mask (bool | None): Give this batch's ``mask`` to the network; None uses the model's own setting
                (the training dataset's ``use_mask``), which a validation batch never changes.
        """
        self.batch_use_mask = self.use_mask if use_mask is None else bool(use_mask)
        self.batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in data.items()}

    def _net_inputs(self, batch):
        inputs = {}
        for arg, key in self.io['inputs'].items():
            if key == 'mask' and not getattr(self, 'batch_use_mask', self.use_mask):
                continue
            if key in batch:
                inputs[arg] = batch[key]
        missing = [key for arg, key in self.io['inputs'].items() if arg not in inputs and key != 'mask']
        if missing:
            raise KeyError(f'The batch has no {missing} for the network (batch keys: {sorted(batch)}); check the '
                           'dataset type or network_io:inputs')
        return inputs

    def _name_outputs(self, outputs):
        if torch.is_tensor(outputs):
            outputs = [outputs]
        if len(outputs) != len(self.io['outputs']):
            raise ValueError(f'The network returned {len(outputs)} outputs, network_io names {self.io["outputs"]}')
        return OrderedDict(zip(self.io['outputs'], outputs))

    def optimize_parameters(self, current_iter):
        """One training step: forward, losses, backward, clipping, optimizer step, EMA.

        With ``train.amp`` the forward runs under autocast and the losses on fp32 outputs. With the gradient scaler
        (fp16) the gradients are unscaled before clipping, and a step whose gradients overflowed is skipped by the
        scaler (which then lowers its scale); a non-finite loss stops training as without AMP.

        Args:
            current_iter (int): Current iteration.

        Raises:
            FloatingPointError: The loss is not finite (nothing is updated; saved checkpoints stay valid).
        """
        self.optimizer_g.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp_dtype):
            outputs = self.net_g(**self._net_inputs(self.batch))
        self.output = self._name_outputs(to_float32(outputs))
        loss_dict = OrderedDict()
        l_total = 0
        for name, loss_fn, preds, target in self.losses:
            value = 0
            for pred in preds:
                value = value + (loss_fn(self.output[pred]) if target is None else
                                 loss_fn(self.output[pred], self._target(target, name)))
            loss_dict[name] = value
            l_total = l_total + value
        if not torch.isfinite(l_total):
            values = ', '.join(f'{k}={float(v):.4g}' for k, v in loss_dict.items())
            raise FloatingPointError(
                f'Loss is {float(l_total)} at iteration {current_iter} ({values}); training stopped before '
                f'updating the weights. {describe_saved(self.opt["path"])} Lower the learning rate or check the data.')
        if self.opt.get('dist'):
            # Keeps every parameter in the graph so DDP never meets an unused one (EFNet's EMGC without a mask).
            l_total = l_total + 0 * sum(p.sum() for p in self.net_g.parameters())
        if self.scaler is None:
            l_total.backward()
            if self.use_grad_clip:
                torch.nn.utils.clip_grad_norm_(self.net_g.parameters(), self.grad_clip_norm)
            self.optimizer_g.step()
        else:
            self.scaler.scale(l_total).backward()
            if self.use_grad_clip:
                self.scaler.unscale_(self.optimizer_g)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(self.net_g.parameters(), self.grad_clip_norm)
            self.scaler.step(self.optimizer_g)
            self.scaler.update()
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def _target(self, key, loss_name):
        if key not in self.batch:
            raise KeyError(f'Loss {loss_name} needs "{key}" but the batch has only {sorted(self.batch)}')
        return self.batch[key]

    def _inference_net(self):
        """The network for validation and testing: the EMA copy, else the bare network (never the DDP wrapper,
        whose forward would broadcast buffers and hang ranks with unequal shards)."""
        if getattr(self, 'net_g_ema', None) is not None:
            return self.net_g_ema
        return self.get_bare_model(self.net_g)

    def test(self):
        """Runs the network on the current batch (eval mode, padding or tiling, mini-batches, ``val.precision``)."""
        bare = self._inference_net()
        was_training = bare.training
        bare.eval()
        net = autocast_forward(bare, self.val_dtype, self.device)
        val_opt = self.opt.get('val') or {}
        multiple = val_opt.get('size_multiple') or getattr(bare, 'size_multiple', 1)
        inputs = self._net_inputs(self.batch)
        n = next(iter(inputs.values())).shape[0]
        chunk = val_opt.get('max_minibatch') or n
        outs = []
        with torch.inference_mode():
            for start in range(0, n, chunk):
                part = {k: v[start:start + chunk] for k, v in inputs.items()}
                if val_opt.get('grids'):
                    out = forward_tiled(net, part, val_opt['crop_size'], multiple,
                                        max_minibatch=val_opt.get('max_minibatch') or 1)
                else:
                    out = forward_padded(net, part, multiple)
                outs.append(self._name_outputs(out))
        self.output = OrderedDict((k, torch.cat([o[k] for o in outs])) for k in self.io['outputs'])
        bare.train(was_training)

    def get_current_visuals(self):
        """Returns the result, the input image, the ground truth and the events (when present) on the CPU.

        Returns:
            OrderedDict: ``result``, ``lq`` (first input), ``gt`` and ``events`` (the input named ``E`` or
            ``*event*``, or ``network_io.events``).
        """
        visuals = OrderedDict(result=self.output[self.io['result']].detach().float().cpu())
        first_input = next(iter(self.io['inputs'].values()))
        if first_input in self.batch:
            visuals['lq'] = self.batch[first_input].detach().float().cpu()
        if self.io['gt'] in self.batch:
            visuals['gt'] = self.batch[self.io['gt']].detach().float().cpu()
        event_key = self.io.get('events') or next(
            (key for arg, key in self.io['inputs'].items() if arg == 'E' or 'event' in arg), None)
        if event_key in self.batch:
            visuals['events'] = self.batch[event_key].detach().float().cpu()
        return visuals

    def get_current_log(self):
        """Returns the losses of the last step."""
        return self.log_dict

    def validation(self, dataloader, current_iter, tb_logger=None, save_img=False):
        """Evaluates a dataset, sharded over all ranks (see :func:`basicsr.models.validation.run_validation`).

        Args:
            dataloader (DataLoader): Validation/test loader (its dataset is indexed directly).
            current_iter (int | str): Iteration (training) or a label (testing).
            tb_logger (SummaryWriter | None): TensorBoard writer. Default: None.
            save_img (bool): Save result images. Default: False.

        Returns:
            dict: Mean metric values of the dataset (rank 0; empty elsewhere).
        """
        return run_validation(self, dataloader, current_iter, tb_logger, save_img)

    def save(self, epoch, current_iter):
        """Saves the weights (``params`` and ``params_ema``) and the training state.

        Args:
            epoch (int): Current epoch.
            current_iter (int): Current iteration; -1 saves ``net_g_latest.pth`` only.
        """
        if getattr(self, 'net_g_ema', None) is not None:
            self.save_network([self.net_g, self.net_g_ema], 'net_g', current_iter, ['params', 'params_ema'])
        else:
            self.save_network(self.net_g, 'net_g', current_iter)
        if current_iter != -1:
            self.save_training_state(epoch, current_iter)


MODEL_REGISTRY.register(ImageEventRestorationModel, name='TestImageEventRestorationModel')
