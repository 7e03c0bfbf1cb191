"""What ``basicsr/infer.py`` gives a user besides the pictures: the side-by-side video of a recording, the event
video of an event-only file, the summary (and ``--quiet``), the missing-checkpoint message and its help text."""
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from basicsr.archs.efnet_arch import EFNet
from basicsr.deblur import InferenceError
from basicsr.deblur.methods import RELEASED_WEIGHTS_SECTION
from basicsr.events import EventStream, Frame, write_event_h5
from basicsr.infer import build_parser, main
from basicsr.utils.options import build_arg_parser
from basicsr.utils.video import read_video_info, side_by_side_frame
from pipeline_utils import REPO_ROOT, env, read_video_frames

H, W = 18, 30  # odd sums: the video pads the side-by-side frame to even sides
EXPOSURES = [(0.02, 0.08), (0.12, 0.18), (0.22, 0.28), (0.32, 0.38)]
TITLE, CAPTION = 18, 18  # rows of the frame line and of the tile captions (basicsr.utils.img_util.make_panel)


def _stream(seed=0, n=6000, seconds=0.4, h=H, w=W):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, seconds, n))
    return EventStream.from_arrays(rng.integers(0, w, n), rng.integers(0, h, n), t, rng.choice([-1, 1], n), h, w)


@pytest.fixture
def recording(tmp_path):
    """An event_utils h5 recording of len(EXPOSURES) frames (smooth, different from each other), and the frames."""
    yy, xx = np.mgrid[0:H, 0:W] / max(H, W)
    images = [np.stack([(40 + 200 * ramp * (k + 1) / len(EXPOSURES)) for ramp in (xx, yy, (xx + yy) / 2)], -1)
              .astype(np.uint8) for k in range(len(EXPOSURES))]
    path = tmp_path / 'rec.h5'
    write_event_h5(path, _stream(), frames=[Frame(img, (t0 + t1) / 2, t0, t1) for img, (t0, t1) in
                                            zip(images, EXPOSURES)])
    return str(path), images


def _cli(args):
    return subprocess.run([sys.executable, 'basicsr/infer.py', *map(str, args)], cwd=REPO_ROOT, env=env(),
                          capture_output=True, text=True, timeout=300)


def test_recording_video_has_one_frame_per_frame_and_the_summary_says_what_happened(recording, tmp_path, capsys):
    path, images = recording
    out = tmp_path / 'out'
    written = main(['--events', path, '--method', 'EDI', '--net-opt', 'threshold=0.2', '--no-denoise', '--video',
                    '--no-progress', '--out', str(out)])
    video = out / 'side_by_side.mp4'
    info = read_video_info(video)
    height, width = TITLE + CAPTION + H, 3 * W + 2 * 4  # blurry | events | sharp with 4-pixel gaps
    assert (info['frames'], info['height'], info['width']) == (len(EXPOSURES), height + height % 2, width + width % 2)
    assert info['fps'] == pytest.approx(10)
    # video frame k is frame k's blurry | events | sharp under its EDI caption, in order (MPEG-4 is lossy and the
    # event tiles are noise: compare mean absolute differences, each frame closer to its own picture than to others)
    expected = []
    for k, image in enumerate(images):
        sharp, events = (cv2.imread(written[k][kind], cv2.IMREAD_UNCHANGED) for kind in ('sharp', 'events'))
        expected.append(side_by_side_frame(image, events, sharp, f'frame {k}', 'EDI c=0.200 given')[TITLE:])
    decoded = [frame[TITLE:height, :width].astype(float) for frame in read_video_frames(video)]
    errors = np.array([[np.abs(frame - picture).mean() for picture in expected] for frame in decoded])
    assert np.array_equal(errors.argmin(axis=1), np.arange(len(images))), errors
    assert errors.diagonal().max() < 15, errors  # measured 9-10 (opencv-python-headless mp4v); others 22+
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f'EDI deblurred {len(EXPOSURES)} frames of rec.h5 in ') and 's per frame' in lines[0]
    assert lines[1] == (f'  written to {out}/: sharp/, events/, panel/ (000000.png .. '
                        f'{len(EXPOSURES) - 1:06d}.png), thresholds.csv')
    assert lines[2] == f'  EDI thresholds: given 0.2 for {len(EXPOSURES)} frames'
    assert lines[3] == f'  video: {video}'
    # an earlier video is a result like the others: refused without --overwrite, and left as it was
    before = video.read_bytes()
    out2 = tmp_path / 'out2'
    out2.mkdir()
    (out2 / 'side_by_side.mp4').write_bytes(before)
    with pytest.raises(InferenceError, match=r'side_by_side\.mp4.*--overwrite'):
        main(['--events', path, '--method', 'EDI', '--video', '--no-progress', '--out', str(out2)])
    assert (out2 / 'side_by_side.mp4').read_bytes() == before and sorted(p.name for p in out2.iterdir()) == [
        'side_by_side.mp4']
    png = str(tmp_path / 'blurry.png')
    cv2.imwrite(png, images[0])
    with pytest.raises(InferenceError, match='--video is for the frames of a recording'):
        main(['--events', path, '--frame', '0', '--image', png, '--method', 'EDI', '--video', '--out', str(out2)])


def test_summary_of_a_learned_method_names_its_checkpoint_and_quiet_prints_nothing(recording, tmp_path, capsys):
    path, _ = recording
    torch.manual_seed(0)
    ckpt = tmp_path / 'efnet.pth'
    torch.save({'params': EFNet(wf=8).state_dict()}, ckpt)
    main(['--events', path, '--frame', '1', '3', '--method', 'EFNet', '--checkpoint', str(ckpt), '--no-progress',
          '--out', str(tmp_path / 'a')])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith('EFNet deblurred 2 frames of rec.h5')
    assert lines[1] == f'  written to {tmp_path / "a"}/: sharp/, events/, panel/ (000001.png .. 000003.png)'
    assert lines[2:] == [f'  checkpoint: {ckpt}']
    main(['--events', path, '--method', 'EFNet', '--checkpoint', str(ckpt), '--quiet', '--video',
          '--out', str(tmp_path / 'b')])
    assert capsys.readouterr().out == ''
    assert read_video_info(tmp_path / 'b' / 'side_by_side.mp4')['frames'] == len(EXPOSURES)


def test_event_only_file_gives_its_event_video_from_the_command_line(tmp_path):
    stream = _stream(seed=2, seconds=0.3)
    path = tmp_path / 'events_only.h5'
    write_event_h5(path, stream)
    out = tmp_path / 'video'
    proc = _cli(['--events', path, '--video', '--video-window', 0.05, '--fps', 12, '--out', out])
    assert proc.returncode == 0, proc.stderr
    expected = int((stream.t[-1] - stream.t[0]) // 0.05) + 1  # windows from the first event to the last
    info = read_video_info(out / 'events.mp4')
    assert (info['frames'], info['height'], info['width']) == (expected, TITLE + H, W)
    assert info['fps'] == pytest.approx(12)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f'event video of events_only.h5: {expected} frames of 0.05 s ({len(stream)} events '
                               f'over {expected * 0.05:.3f} s) in ') and lines[0].endswith(' s per frame)'), lines
    assert lines[1:] == [f'  video: {out / "events.mp4"}']
    # deblurring it needs a frame: the message says so and points to --video; --quiet prints nothing on stdout
    proc = _cli(['--events', path, '--method', 'EDI', '--out', tmp_path / 'edi'])
    assert proc.returncode == 1 and 'holds no frames' in proc.stderr and 'deblurring needs a blurry frame' in \
        proc.stderr and '--video without --method' in proc.stderr, proc.stderr
    proc = _cli(['--events', path, '--video', '--quiet', '--overwrite', '--out', out])
    assert proc.returncode == 0 and proc.stdout == '', proc.stdout + proc.stderr
    assert read_video_info(out / 'events.mp4')['frames'] == int((stream.t[-1] - stream.t[0]) // 0.033) + 1


def test_missing_checkpoint_points_to_the_released_weights(recording, tmp_path):
    path, _ = recording
    with open(REPO_ROOT / 'README.md', encoding='utf-8') as f:
        assert f'### {RELEASED_WEIGHTS_SECTION}\n' in f.read()  # the section named exists under that heading
    with pytest.raises(InferenceError) as error:
        main(['--events', path, '--method', 'EFNet', '--out', str(tmp_path / 'out')])
    message = str(error.value)
    assert f'README section "{RELEASED_WEIGHTS_SECTION}"' in message and 'only for tests' in message
    assert not (tmp_path / 'out' / 'sharp').exists()


def _option_helps(text):
    """The help text of each option of an argparse help page (joined lines)."""
    entries = re.split(r'\n(?=  -)', text.split('options:', 1)[1])
    entries = [entry.split('\n\n')[0] for entry in entries]  # without the group headings that follow
    return {entry.split()[0]: ' '.join(entry.split()) for entry in entries if entry.strip().startswith('-')}


def test_help_shows_each_default_once():
    proc = _cli(['--help'])
    assert proc.returncode == 0
    pages = {'infer.py': proc.stdout, 'train.py': build_arg_parser(True).format_help(),
             'test.py': build_arg_parser(False).format_help()}
    assert _option_helps(build_parser().format_help()).keys() == _option_helps(proc.stdout).keys()
    for page, text in pages.items():
        helps = _option_helps(text)
        assert len(helps) > 5, page
        for option, help_text in helps.items():
            assert help_text.count('default') <= 1 and '(default: None)' not in help_text, (page, help_text)
    infer = _option_helps(proc.stdout)
    assert infer['--device'].endswith('(default: auto)') and infer['--edi-window'].endswith('(default: 0)')
    assert infer['--video-window'].endswith('(default: 0.033)') and 'default' not in infer['--overwrite']
