"""Results are never lost or mixed up: infer.py refuses to overwrite, unwritable folders and truncated data fail in
one line before any work, result PNGs follow the umask, and samples with equal stems keep distinct names."""
import csv
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from basicsr.data.h5_image_dataset import H5ImageDataset
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.data.sample_names import unique_names
from basicsr.events import EventStream, Frame, event_mask, scer, write_event_h5
from basicsr.events.efnet_h5 import write_efnet_h5
from basicsr.infer import main as infer_main
from basicsr.models.deblur_methods import InferenceError
from basicsr.utils.img_util import imwrite

ROOT = Path(__file__).resolve().parents[1]
H, W = 16, 20
EXPOSURES = [(0.1, 0.3), (0.5, 0.7)]


@pytest.fixture
def read_only():
    """Makes folders read-only for this process, also as root (``chattr +i``); skips when that is impossible."""
    made = []
    chattr = shutil.which('chattr') if os.geteuid() == 0 else None

    def make(path):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o555)
        made.append(path)
        if chattr:
            subprocess.run([chattr, '+i', str(path)], capture_output=True)
        try:
            (path / '.probe').touch()
        except OSError:
            return path
        (path / '.probe').unlink()
        pytest.skip('cannot make a read-only folder here (root without a working chattr)')

    yield make
    for path in made:
        if chattr:
            subprocess.run([chattr, '-i', str(path)], capture_output=True)
        path.chmod(0o755)


def _recording(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    stream = EventStream.from_arrays(rng.integers(0, W, n), rng.integers(0, H, n), np.sort(rng.uniform(0, 0.8, n)),
                                     rng.choice([-1, 1], n), H, W)
    frames = [Frame(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (t0 + t1) / 2, t0, t1) for t0, t1 in EXPOSURES]
    path = tmp_path / 'rec.h5'
    write_event_h5(path, stream, frames=frames)
    png = tmp_path / 'blur.png'
    cv2.imwrite(str(png), frames[0].image)
    return str(path), str(png)


def _infer(args):
    return infer_main(args + ['--method', 'EDI', '--net-opt', 'threshold=0.2', '--no-progress'])


def _contents(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()}


# ---------------------------------------------------------------- infer.py --out


def test_infer_refuses_to_overwrite_earlier_results_unless_asked(tmp_path):
    h5, png = _recording(tmp_path)
    out = tmp_path / 'out'
    written = _infer(['--events', h5, '--out', str(out)])
    assert [w['name'] for w in written] == ['000000', '000001']
    before = _contents(out)
    assert len(before) == 7  # sharp, events and panel of two frames, and EDI's thresholds.csv
    # a second run over the same frames, and a single frame whose stem is one of them, are refused untouched
    for args in (['--events', h5], ['--events', h5, '--frame', '1'],
                 ['--events', h5, '--image', png, '--frame', '0', '--name', '000000']):
        with pytest.raises(InferenceError, match=r'--out .*result files of an earlier run would be replaced '
                           r'\(e\.g\. .*00000[01]\.png\); pass --overwrite'):
            _infer(args + ['--out', str(out)])
        assert _contents(out) == before
    # other names beside them are fine; --overwrite replaces
    _infer(['--events', h5, '--image', png, '--frame', '0', '--out', str(out)])
    assert (out / 'sharp' / 'blur.png').is_file() and len(_contents(out)) == 10
    (out / 'sharp' / '000001.png').write_bytes(b'stale')
    _infer(['--events', h5, '--out', str(out), '--overwrite'])
    assert cv2.imread(str(out / 'sharp' / '000001.png')) is not None


@pytest.mark.parametrize('case', ['read-only folder', 'read-only parent', 'path through a file'])
def test_infer_unwritable_out_fails_in_one_line_before_inference(tmp_path, read_only, case):
    h5, _ = _recording(tmp_path)
    if case == 'path through a file':
        (tmp_path / 'afile').write_text('x')
        out, match = tmp_path / 'afile' / 'out', 'cannot be created, .*afile is a file, not a folder'
    elif case == 'read-only folder':
        out, match = read_only(tmp_path / 'ro'), 'ro is not writable'
    else:
        out, match = read_only(tmp_path / 'ro') / 'new' / 'out', 'out cannot be created: .*ro is not writable'
    # a broken checkpoint shows the order: the folder is checked before the network is even loaded
    ckpt = tmp_path / 'broken.pth'
    ckpt.write_bytes(b'not a checkpoint')
    proc = subprocess.run([sys.executable, str(ROOT / 'basicsr' / 'infer.py'), '--events', h5, '--method', 'EFNet',
                           '--checkpoint', str(ckpt), '--out', str(out), '--no-progress'],
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith('error: --out ') and re.search(match, lines[0]), lines[0]


# ---------------------------------------------------------------- result PNGs follow the umask


@pytest.mark.parametrize('umask', [0o022, 0o002, 0o077])
def test_result_png_mode_follows_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = tmp_path / 'res' / 'x.png'
        imwrite(np.zeros((4, 5, 3), np.uint8), path)
        csv_path = tmp_path / 'plain.txt'
        csv_path.write_text('reference: a file made by open()')
    finally:
        os.umask(old)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE(csv_path.stat().st_mode)
    assert sorted(p.name for p in path.parent.iterdir()) == ['x.png']  # no temporary left


# ---------------------------------------------------------------- test.py: data and output folders


def _efnet_h5(path, seed, n=2):
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, (3, H, W), dtype=np.uint8) for _ in range(n)]
    sharps = [rng.integers(0, 256, (3, H, W), dtype=np.uint8) for _ in range(n)]
    voxels = []
    for _ in range(n):
        m = 400
        voxels.append(scer(rng.integers(0, W, m), rng.integers(0, H, m), np.sort(rng.uniform(0, 1, m)),
                           rng.choice([-1, 1], m), 6, H, W))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_efnet_h5(path, frames, sharps, voxels, [event_mask(v) for v in voxels], (H, W))


def _test_opt(tmp_path, dataroot):
    opt = {'name': 'edi_h5', 'model_type': 'ImageEventRestorationModel', 'num_gpu': 0, 'manual_seed': 0,
           'datasets': {'test': {'name': 'seqs', 'type': 'H5ImageDataset', 'dataroot': str(dataroot),
                                 'norm_voxel': False, 'return_mask': False}},
           'network_g': {'type': 'EDI', 'threshold': 0.2},
           'path': {'pretrain_network_g': None, 'root': str(tmp_path)},
           'val': {'save_img': True, 'rgb2bgr': False,
                   'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}}}}
    path = tmp_path / 'test.yml'
    path.write_text(yaml.safe_dump(opt))
    return path


def _run_test(opt, *force):
    cmd = [sys.executable, str(ROOT / 'basicsr' / 'test.py'), '-opt', str(opt)]
    if force:
        cmd += ['--force_yml', *force]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def _one_line_error(proc):
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if 'Testing stopped' in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


def test_test_py_truncated_h5_is_a_one_line_error_naming_the_file(tmp_path):
    data = tmp_path / 'data'
    _efnet_h5(data / 'a.h5', 0)
    _efnet_h5(data / 'b.h5', 1)
    size = (data / 'b.h5').stat().st_size
    with open(data / 'b.h5', 'r+b') as f:
        f.truncate(size // 2)
    line = _one_line_error(_run_test(_test_opt(tmp_path, data)))
    assert str(data / 'b.h5') in line and 'truncated' in line, line


def test_test_py_read_only_results_folder_is_a_one_line_error(tmp_path, read_only):
    data = tmp_path / 'data'
    _efnet_h5(data / 'a.h5', 0)
    results = read_only(tmp_path / 'results')
    line = _one_line_error(_run_test(_test_opt(tmp_path, data)))
    assert f'{results} is not writable' in line, line
    assert not any(results.iterdir())


def test_nested_sequences_with_equal_names_keep_distinct_results(tmp_path):
    """Before: both ``seq.h5`` files became sequence ``seq``: one CSV row per index, PNGs overwritten."""
    data = tmp_path / 'data'
    _efnet_h5(data / 'a' / 'seq.h5', 0)
    _efnet_h5(data / 'b' / 'seq.h5', 1)
    _efnet_h5(data / 'b' / 'other.h5', 2)
    listing = tmp_path / 'list.txt'
    listing.write_text('\n'.join(str(p) for p in (data / 'a' / 'seq.h5', data / 'b' / 'seq.h5',
                                                  data / 'b' / 'other.h5')) + '\n')
    proc = _run_test(_test_opt(tmp_path, listing))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = tmp_path / 'results' / 'edi_h5'
    rows = list(csv.reader(open(res / 'seqs_metrics.csv')))
    names = [r[0] for r in rows[1:-1]]
    assert names == ['a/seq/0000', 'a/seq/0001', 'b/seq/0000', 'b/seq/0001', 'other/0000', 'other/0001']
    vis = res / 'visualization' / 'seqs'
    pngs = sorted(str(p.relative_to(vis)) for p in vis.rglob('*.png'))
    assert pngs == [f'{n}.png' for n in names]
    # the mean is over all six samples
    assert float(rows[-1][1]) == pytest.approx(np.mean([float(r[1]) for r in rows[1:-1]]), abs=1e-5)


def test_sample_names_stay_stems_unless_they_repeat(tmp_path):
    assert unique_names(['x.png', 'y.png']) == ['x', 'y']
    assert unique_names(['a/0001.png', 'b/0001.png', 'b/0002.png']) == ['a/0001', 'b/0001', '0002']
    assert unique_names(['x.png', 'x.jpg']) == ['x.png', 'x.jpg']
    # the h5 split of a flat folder keeps the specified sequence names (file name up to the first dot)
    _efnet_h5(tmp_path / 'flat' / 'GOPR0384_11_00.blur.h5', 0, n=1)
    _efnet_h5(tmp_path / 'flat' / 'GOPR0385_11_01.h5', 1, n=1)
    ds = H5ImageDataset({'name': 'f', 'dataroot': str(tmp_path / 'flat'), 'return_gt_frame': False})
    assert [ds[i]['image_name'] for i in range(len(ds))] == ['GOPR0384_11_00/0000', 'GOPR0385_11_01/0000']
    # paired folders: flat names unchanged, nested equal stems by relative path
    for root in ('gt', 'lq'):
        for rel in ('a/0001.png', 'b/0001.png', 'b/0002.png'):
            (tmp_path / root / rel).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / root / rel), np.zeros((4, 4, 3), np.uint8))
    ds = PairedImageDataset({'name': 'p', 'dataroot_gt': str(tmp_path / 'gt'), 'dataroot_lq': str(tmp_path / 'lq')})
    assert [ds[i]['image_name'] for i in range(len(ds))] == ['a/0001', 'b/0001', '0002']


class _EchoModel:
    """Just enough of a model for run_validation: the result is the input frame."""

    def __init__(self):
        import logging

        import torch
        self.opt = {'is_train': False, 'path': {}, 'val': {'metrics': {'psnr': {'type': 'calculate_psnr',
                                                                               'crop_border': 0}}}}
        self.net_g, self.device, self.is_train = torch.nn.Identity(), torch.device('cpu'), False
        self.logger = logging.getLogger('echo')

    def get_bare_model(self, net):
        return net

    def feed_data(self, data, use_mask=None):
        self.data = data

    def test(self):
        pass

    def get_current_visuals(self):
        return {'result': self.data['frame'], 'gt': self.data['frame_gt']}


def test_validation_refuses_sample_names_that_collide(tmp_path):
    """A dataset that still repeats a name makes validation fail loudly instead of averaging over fewer samples."""
    from torch.utils.data import DataLoader

    from basicsr.models.validation import run_validation

    _efnet_h5(tmp_path / 'seq.h5', 0, n=3)

    class Renamed(H5ImageDataset):
        def __getitem__(self, index):
            return {**super().__getitem__(index), 'image_name': 'same' if index < 2 else 'other'}

    opt = {'name': 'dup', 'dataroot': str(tmp_path), 'return_voxel': False}
    model = _EchoModel()
    with pytest.raises(ValueError, match=r"dataset 'dup': 1 samples share a name .*\['same'\]"):
        run_validation(model, DataLoader(Renamed(opt)), 'x')
    means = run_validation(model, DataLoader(H5ImageDataset(opt)), 'x')
    assert list(model.image_records) == ['seq/0000', 'seq/0001', 'seq/0002']
    values = [rec['psnr'] for rec in model.image_records.values()]
    assert len(set(values)) == 3 and means['psnr'] == pytest.approx(np.mean(values), rel=1e-12)
