"""Event-deblurring samples made on the fly: no files needed (smoke tests, CI and a first run)."""
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from basicsr.events import EventInputSpec, build_event_input
from basicsr.synthesis.blur_synthesis import event_blur_sample, linear_trajectory
from basicsr.synthesis.simulator import DVSSimulator
from basicsr.utils.registry import DATASET_REGISTRY


def random_texture(rng, height, width, channels=3):
    """A smooth random colour texture with sharp edges, values in [0.1, 0.95] (above the sensor's linear range).

    Args:
        rng (numpy.random.Generator): Generator.
        height (int): Height.
        width (int): Width.
        channels (int): Number of channels. Default: 3.

    Returns:
        np.ndarray: float32 (H, W, C).
    """
    coarse = rng.uniform(0, 1, size=(max(height // 8, 2), max(width // 8, 2), channels)).astype(np.float32)
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).reshape(height, width, channels)
    for _ in range(4):
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        h, w = rng.integers(height // 8 + 1, height // 2 + 2), rng.integers(width // 8 + 1, width // 2 + 2)
        img[y0:y0 + h, x0:x0 + w] = rng.uniform(0, 1, size=channels)
    return np.clip(img, 0, 1) * 0.85 + 0.1


@DATASET_REGISTRY.register()
class SyntheticEventDeblurDataset(Dataset):
    """Blurry frame, sharp middle frame and SCER events of a random texture under linear camera motion.

    Sample ``i`` is a pure function of ``(seed, i)``. Events come from the project's DVS simulator (noise-free,
    no threshold mismatch) on the sub-frames' luminance; the item has EFNet's keys, so any option file written for
    ``H5ImageDataset`` can switch to this dataset to run without data.

    Options (besides ``type``, ``name``, ``phase``):
        ``num_samples`` (int, default 16), ``size`` ([H, W], default [64, 64]), ``num_subframes`` (default 9),
        ``max_shift`` (pixels, default 8), ``num_bins`` (SCER channels, default 6), ``seed`` (default 0),
        ``threshold`` (contrast threshold, default 0.2), ``norm_voxel`` (default True), ``return_mask``
        (default True), ``event_repr`` (default None: ``{type: scer, num_bins: <num_bins>}``): any registered
        representation (see :func:`basicsr.events.build_representation`), spanning the events of the exposure
        unless it sets its own ``t_range``. The mask is taken from the un-normalised representation; the
        representation is then normalised by its own ``normalize`` if it names one, else max-abs when
        ``norm_voxel``.

    Args:
        opt (dict): Dataset options.
    """

    def __init__(self, opt):
        self.opt = opt
        self.num_samples = int(opt.get('num_samples', 16))
        self.size = tuple(int(v) for v in opt.get('size', (64, 64)))
        self.num_subframes = int(opt.get('num_subframes', 9))
        self.max_shift = float(opt.get('max_shift', 8))
        self.num_bins = int(opt.get('num_bins', 6))
        self.seed = int(opt.get('seed', 0))
        self.threshold = float(opt.get('threshold', 0.2))
        rep = opt.get('event_repr') or {'type': 'scer', 'num_bins': self.num_bins}
        if not isinstance(rep, dict):
            raise ValueError(f'{self.__class__.__name__}: option event_repr must be a dict such as '
                             f'{{type: scer, num_bins: 6}}, got {rep!r}')
        rep = dict(rep)
        if 'normalize' not in rep:
            rep['normalize'] = 'maxabs' if opt.get('norm_voxel', True) else None
        self.event_input = EventInputSpec(rep, key='voxel', mask_key='mask')
        self.event_input.build_raw()  # a bad event_repr fails here, naming the option
        if self.num_samples < 1 or self.num_subframes < 2 or len(self.size) != 2:
            raise ValueError(f'{self.__class__.__name__}: need num_samples >= 1, num_subframes >= 2 and size [H, W]; '
                             f'got {self.num_samples}, {self.num_subframes}, {self.size}')

    def __len__(self):
        return self.num_samples

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, index])
        height, width = self.size
        sharp = random_texture(rng, height, width)
        shift = rng.uniform(-self.max_shift, self.max_shift, size=2)
        sim = DVSSimulator(pos_thres=self.threshold, neg_thres=self.threshold, sigma_thres=0, cutoff_hz=0,
                           leak_rate_hz=0, shot_noise_rate_hz=0, shuffle=False)
        sample = event_blur_sample(sharp, linear_trajectory(shift, self.num_subframes), rng, simulator=sim)
        ev = sample['events']
        events, _ = build_event_input(self.event_input, ev.x, ev.y, ev.t, ev.p, None, None, height, width)
        item = {
            'frame': torch.from_numpy(np.ascontiguousarray(sample['blur'].transpose(2, 0, 1))),
            'frame_gt': torch.from_numpy(np.ascontiguousarray(sample['sharp'].transpose(2, 0, 1))),
            'voxel': torch.from_numpy(events['voxel']).float(),
            'image_name': f'synthetic_{index:04d}',
        }
        if self.opt.get('return_mask', True):
            item['mask'] = torch.from_numpy(events['mask'])
        return item
