"""What an ONNX file exported by this project records about itself (ONNX ``metadata_props``), and how it is read.

Every value is a string; structured values are JSON. Keys:

- ``basicsr.format``: :data:`FORMAT` (marks a file of this project);
- ``basicsr.method``: registered network name (e.g. ``EFNet``);
- ``basicsr.options``: complete constructor options (JSON);
- ``basicsr.representation``: the event input it expects (JSON: ``representation`` with its parameters, ``key``,
  ``mask_key``, ``fixed_window``; see :class:`basicsr.events.event_input.EventInputSpec`);
- ``basicsr.io``: forward argument -> ONNX input name, and the result output (JSON ``{'inputs', 'result'}``);
- ``basicsr.size``: the size (H, W) it was exported at, at the event resolution (JSON);
- ``basicsr.network_size``: that size padded to the network's size multiple: the size the graph receives (JSON);
- ``basicsr.dynamic_size``: ``'true'`` when any multiple of the size multiple works, ``'false'`` for that size only;
- ``basicsr.max_rel_diff``: the largest difference to torch found by the export check, relative to the output;
- ``basicsr.version``: project version; ``basicsr.torch``: torch version of the export.
"""
import json
from dataclasses import dataclass

from basicsr.events.event_input import EventInputSpec

__all__ = ['FORMAT', 'OnnxMetadata', 'OnnxMetadataError']

FORMAT = 'event-deblur-basicsr onnx 1'
_PREFIX = 'basicsr.'


class OnnxMetadataError(ValueError):
    """An ONNX file whose metadata is missing or not of this project."""


@dataclass(frozen=True)
class OnnxMetadata:
    """The project's metadata of one exported network.

    Args:
        method (str): Registered network name.
        options (dict): Complete constructor options.
        events (EventInputSpec | None): The event input the graph expects.
        io (dict): ``{'inputs': {forward argument: ONNX input name}, 'result': output name}``.
        size (tuple[int, int]): Export size (H, W) at the event resolution.
        network_size (tuple[int, int]): ``size`` padded to the size multiple: the size the graph receives.
        dynamic_size (bool): Any multiple of the size multiple works (checked at a second size on export).
        max_rel_diff (float): Largest difference to torch found on export, relative to the output's largest value.
        version (str): Project version of the export. Default: ``''``.
        torch_version (str): torch version of the export. Default: ``''``.
    """

    method: str
    options: dict
    events: EventInputSpec
    io: dict
    size: tuple
    network_size: tuple
    dynamic_size: bool
    max_rel_diff: float
    version: str = ''
    torch_version: str = ''

    @property
    def size_text(self):
        """str: ``'any HxW (exported at 260x346)'`` or ``'260x346 only'``, for messages."""
        size = f'{self.size[0]}x{self.size[1]}'
        return f'any HxW (exported at {size})' if self.dynamic_size else f'{size} only'

    def to_props(self):
        """Encodes the metadata as ONNX ``metadata_props``.

        Returns:
            dict[str, str]: Key -> string value.
        """
        events = None if self.events is None else {
            'representation': self.events.event_repr, 'key': self.events.key, 'mask_key': self.events.mask_key,
            'fixed_window': self.events.fixed_window}
        values = {'format': FORMAT, 'method': self.method, 'options': json.dumps(self.options, sort_keys=True),
                  'representation': json.dumps(events, sort_keys=True), 'io': json.dumps(self.io),
                  'size': json.dumps(list(self.size)), 'network_size': json.dumps(list(self.network_size)),
                  'dynamic_size': json.dumps(bool(self.dynamic_size)), 'max_rel_diff': repr(float(self.max_rel_diff)),
                  'version': self.version, 'torch': self.torch_version}
        return {_PREFIX + k: v for k, v in values.items()}

    @classmethod
    def from_props(cls, props, path=''):
        """Decodes the metadata of an exported file.

        Args:
            props (Mapping[str, str]): The file's ``metadata_props`` (ONNX Runtime's ``custom_metadata_map``).
            path (str): File, named in errors. Default: ``''``.

        Returns:
            OnnxMetadata: The metadata.

        Raises:
            OnnxMetadataError: For a file not exported by this project, or damaged metadata.
        """
        if props.get(_PREFIX + 'format') != FORMAT:
            raise OnnxMetadataError(
                f'{path}: not an ONNX file exported by this project (no {_PREFIX}format={FORMAT!r} metadata, so its '
                'method, options and event representation are unknown); export one with scripts/export_onnx.py')
        try:
            value = {k[len(_PREFIX):]: v for k, v in props.items() if k.startswith(_PREFIX)}
            events = json.loads(value['representation'])
            return cls(method=value['method'], options=json.loads(value['options']),
                       events=None if events is None else EventInputSpec(**events), io=json.loads(value['io']),
                       size=tuple(json.loads(value['size'])), network_size=tuple(json.loads(value['network_size'])),
                       dynamic_size=bool(json.loads(value['dynamic_size'])),
                       max_rel_diff=float(value['max_rel_diff']), version=value.get('version', ''),
                       torch_version=value.get('torch', ''))
        except (KeyError, TypeError, ValueError) as err:
            raise OnnxMetadataError(f'{path}: damaged project metadata ({type(err).__name__}: {err}); export the '
                                    'file again with scripts/export_onnx.py') from None
