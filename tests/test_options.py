"""Option parsing: --force_yml, YAML errors, numeric conversion, derived paths, builders not mutating options."""
import copy

import pytest

from basicsr.archs import build_network
from basicsr.utils.options import OptionError, apply_force_yml, finalize_options, parse_options, yaml_load

MINIMAL = """
name: toy
model_type: ImageEventRestorationModel
num_gpu: 0
manual_seed: 3
datasets:
  train:
    type: SyntheticEventDeblurDataset
    batch_size_per_gpu: 2
network_g: {type: EFNet, wf: 8}
train:
  optim_g: {type: AdamW, lr: 2e-4, betas: [0.9, 0.99]}
  total_iter: 5e1
val: {val_freq: !!float 5e4}
logger: {print_freq: 1, save_checkpoint_freq: 2e1}
"""


def write(tmp_path, text, name='opt.yml'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_force_yml_sets_nested_yaml_values():
    opt = {'train': {'ema_decay': 0, 'optim_g': {'lr': 1}}, 'val': {'val_freq': 1}}
    apply_force_yml(opt, ['train:ema_decay=0.999', 'train:optim_g:lr=!!float 1e-4', 'val:val_freq=~',
                          'train:milestones=[1, 2]', 'train:flag=true'])
    assert opt['train']['ema_decay'] == 0.999 and opt['train']['optim_g']['lr'] == 1e-4
    assert opt['val']['val_freq'] is None and opt['train']['milestones'] == [1, 2] and opt['train']['flag'] is True


@pytest.mark.parametrize('item, message', [('train:nokey:lr=1', "no option 'train:nokey'"),
                                           ('train:lr', 'expects key1:key2=value'),
                                           ('train:lr=[1, 2', 'not valid YAML'),
                                           ('train:lr=__import__("os")', None)])
def test_force_yml_errors(item, message):
    opt = {'train': {'lr': 1}}
    if message is None:  # python code is just a string to YAML, never executed
        apply_force_yml(opt, [item])
        assert opt['train']['lr'] == '__import__("os")'
        return
    with pytest.raises(OptionError, match=message.replace('[', r'\[')):
        apply_force_yml(opt, [item])


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, 'name: a\ntrain:\n  lr: [1, 2\nval: 3\n')
    with pytest.raises(OptionError) as err:
        yaml_load(path)
    assert path in str(err.value) and 'line' in str(err.value)


def test_numbers_converted_and_paths_derived(tmp_path):
    opt = finalize_options(yaml_load(write(tmp_path, MINIMAL)), str(tmp_path), is_train=True)
    assert opt['train']['optim_g']['lr'] == 2e-4 and opt['train']['total_iter'] == 50
    assert opt['val']['val_freq'] == 50000 and opt['logger']['save_checkpoint_freq'] == 20
    assert opt['datasets']['train']['phase'] == 'train'
    assert opt['path']['training_states'] == str(tmp_path / 'experiments' / 'toy' / 'training_states')
    assert opt['path']['tb_logger'] == str(tmp_path / 'tb_logger' / 'toy')


def test_bad_number_and_missing_key(tmp_path):
    with pytest.raises(OptionError, match='train:optim_g:lr must be a number'):
        finalize_options(yaml_load(write(tmp_path, MINIMAL.replace('lr: 2e-4', 'lr: fast'))), '.', True)
    with pytest.raises(OptionError, match="Missing required option 'model_type'"):
        finalize_options(yaml_load(write(tmp_path, MINIMAL.replace('model_type', '# model_type'))), '.', True)


def test_parse_options_debug_and_local_rank(tmp_path):
    path = write(tmp_path, MINIMAL)
    opt, _ = parse_options(str(tmp_path), True, ['-opt', path, '--debug', '--local-rank', '3',
                                                 '--force_yml', 'manual_seed=7'])
    assert opt['name'] == 'debug_toy' and opt['manual_seed'] == 7 and not opt['dist']
    assert opt['val']['val_freq'] == 8 and opt['logger']['print_freq'] == 1
    assert opt['logger']['use_tb_logger'] is False
    assert opt['train']['total_iter'] == 8 and opt['logger']['save_checkpoint_freq'] == 8
    opt, _ = parse_options(str(tmp_path), True, ['-opt', path, '--local_rank=0'])
    assert opt['name'] == 'toy'


def test_builders_do_not_mutate_options():
    net_opt = {'type': 'EFNet', 'wf': 8}
    before = copy.deepcopy(net_opt)
    build_network(net_opt)
    assert net_opt == before
    with pytest.raises(KeyError, match='No object named'):
        build_network({'type': 'NoSuchNet'})


def test_readme_release_table_matches_the_test_options():
    """The README's released-weights table gives the publishers' links and the paths the test option files read."""
    import re
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    readme = (repo / 'README.md').read_text(encoding='utf-8')
    table = readme.split('### Released weights and data', 1)[1].split('\n\n', 2)[2].split('\n\n', 1)[0]
    links = set(re.findall(r'\((https://[^)]+)\)', table))
    eth = 'https://data.vision.ee.ethz.ch/csakarid/shared/EFNet/'
    assert {eth + f'{name}.zip' for name in ('GOPRO', 'REBlur', 'GOPRO_rawevents', 'REBlur_rawevents')} <= links
    assert {'https://drive.google.com/file/d/19O-B-K4IODMENQblwHbSqNu0TX0IF-iA/view?usp=sharing',
            'https://drive.google.com/file/d/1yMGnwfYsxWbVp7r-oc8ls9qnOEDavG3h/view?usp=sharing',
            'https://drive.google.com/drive/folders/1B0fx2tHtxEjWk7ON1aKLKNDl-Ogjck1e',
            'https://drive.google.com/drive/folders/1Cyz8ecUnx2xkDzf-KL6FMs2BbSeKZ6V3',
            'https://drive.google.com/drive/folders/1kHUmemq41GWou8231wEUhJ2Eiq2lJdWA'} <= links
    for name in ('GoPro/EFNet', 'REBlur/EFNet', 'LowLight/synthetic', 'LowLight/real', 'LowLight/hybrid'):
        opt = yaml_load(str(repo / 'options' / 'test' / f'{name}.yml'))
        weights = Path(opt['path']['pretrain_network_g']).name
        assert weights in table, f'{name}: {weights} missing from the README table'
        assert opt['datasets']['test']['dataroot'].rstrip('/') + '/' in table, name
