"""The built-in demo runs end to end in its quick mode and reuses the data it made."""
import importlib.util
import subprocess
import sys

from basicsr.models.edi_threshold import read_thresholds_csv, summarize_thresholds
from pipeline_utils import REPO_ROOT, env


def load_demo():
    spec = importlib.util.spec_from_file_location('demo', REPO_ROOT / 'scripts' / 'demo.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_demo_end_to_end(tmp_path, capsys):
    # a full demo's outputs, which the quick run must leave exactly as they are
    earlier = {tmp_path / 'results' / 'demo' / 'results.md': 'full demo table',
               tmp_path / 'results' / 'demo_EFNet' / 'demo-test_metrics.csv': 'full demo scores',
               tmp_path / 'experiments' / 'demo_EFNet' / 'models' / 'net_g_latest.pth': 'full demo weights'}
    for path, text in earlier.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = subprocess.run([sys.executable, 'scripts/demo.py', '--quick', '--root', str(tmp_path)], cwd=REPO_ROOT,
                          env=env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (tmp_path / 'results' / 'demo_quick' / 'results.md').read_text()
    rows = [line for line in report.splitlines() if line.startswith('| ') and 'method' not in line]
    demo = load_demo()
    assert [r.split('|')[1].strip() for r in rows] == [label for label, *_ in demo.METHODS]
    assert [name for _, _, name, _ in demo.METHODS] == ['demo_Blurry', 'demo_EDI', 'demo_EDI_oracle', 'demo_EFNet']
    blurry = demo.read_scores(tmp_path / 'results' / 'demo_quick_Blurry' / 'demo-test_metrics.csv')[1]
    oracle = demo.read_scores(tmp_path / 'results' / 'demo_quick_EDI_oracle' / 'demo-test_metrics.csv')[1]
    assert oracle['psnr'] > blurry['psnr'], 'EDI with the true threshold must beat the blurry input on simulated data'
    # the EDI row a user gets: the threshold of every frame estimated or, stated, the fallback; never the input
    quick_edi = tmp_path / 'results' / 'demo_quick_EDI'
    edi_scores, edi = demo.read_scores(quick_edi / 'demo-test_metrics.csv')
    thresholds = read_thresholds_csv(str(quick_edi / 'demo-test_thresholds.csv'))
    assert sorted(thresholds) == sorted(edi_scores)
    assert {c.source for c in thresholds.values()} <= {'per-frame', 'fallback'}
    assert edi['psnr'] > blurry['psnr']
    assert f'EDI\'s estimated thresholds: {summarize_thresholds(list(thresholds.values()))}' in report
    import cv2
    panels = cv2.imread(str(tmp_path / 'results' / 'demo_quick' / 'panels.png'))
    assert panels is not None and panels.shape[0] > 40 * 4
    assert 'Picture:' in proc.stdout and 'Table:' in proc.stdout
    recordings = tmp_path / 'datasets' / 'demo_quick' / 'recording'  # for infer.py: tests/test_demo_recording.py
    assert sorted(p.name for p in recordings.iterdir()) == sorted(f'{name}.h5' for name in demo.SOURCES['test'])
    assert f'{recordings}/' in proc.stdout
    assert {path: path.read_text() for path in earlier} == earlier
    assert sorted(p.name for p in (tmp_path / 'results').iterdir()) == [
        'demo', 'demo_EFNet', 'demo_quick', 'demo_quick_Blurry', 'demo_quick_EDI', 'demo_quick_EDI_oracle',
        'demo_quick_EFNet']  # nothing of the full demo moved aside
    assert sorted(p.name for p in (tmp_path / 'experiments').iterdir()) == ['demo_EFNet', 'demo_quick_EFNet']

    data_root = tmp_path / 'datasets' / 'demo_quick'
    before = {p: p.stat().st_mtime_ns for p in data_root.rglob('*.h5')}
    demo.make_data(str(data_root), dict(demo.QUICK), 0)
    assert 'Reusing the demo data' in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in data_root.rglob('*.h5')} == before
