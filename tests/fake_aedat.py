"""A stand-in for the optional ``aedat`` package: a decoder replaying given packets (tests only)."""
import sys
import types


def install_fake_aedat(monkeypatch, packets, streams):
    """Puts a fake ``aedat`` module with a ``Decoder`` into ``sys.modules`` for the test's duration.

    Args:
        monkeypatch (pytest.MonkeyPatch): The test's monkeypatch fixture.
        packets (list[dict]): Packets the decoder yields (``stream_id`` plus ``events`` or ``frame``).
        streams (dict): What ``id_to_stream()`` returns.
    """
    module = types.ModuleType('aedat')

    class Decoder:

        def __init__(self, path):
            self.path = path

        def id_to_stream(self):
            return streams

        def __iter__(self):
            return iter(packets)

    module.Decoder = Decoder
    monkeypatch.setitem(sys.modules, 'aedat', module)
