"""The inference API: load a method, deblur frames with their events, write the results.

Above :mod:`basicsr.models` (it uses the padded/tiled forward of :mod:`basicsr.models.inference` and the checkpoint
loading of :mod:`basicsr.models.base_model`) and below the command line ``basicsr/infer.py``, which only parses
arguments over it. ``methods`` loads a method from its declaration and checkpoint, ``frame`` deblurs one frame,
``run`` drives whole runs (a frame, a file, frames in memory, a recording), ``writers`` writes the results
(pictures, records, videos) and ``summary`` says what a run did.
Recordings and their exposure windows are read by :mod:`basicsr.events.recording`.

Example::

    from basicsr.deblur import deblur_recording, load_method
    net = load_method('EFNet', 'EFNet-GoPro.pth')
    deblur_recording('rec.h5', 'results/rec', 'EFNet', net)
"""
from basicsr.deblur.frame import deblur_window, frame_inputs, network_inputs
from basicsr.deblur.methods import canonical_method, inference_methods, load_method, recognise_state_dict
from basicsr.deblur.run import deblur, deblur_file, deblur_frames, deblur_recording, make_denoiser, read_image
from basicsr.deblur.summary import event_video_summary, run_summary
from basicsr.deblur.writers import (EVENT_VIDEO_FILE, RESULT_KINDS, VIDEO_FILE, SideBySideVideo, check_out,
                                     write_events_video, write_record, write_result)
from basicsr.events.recording import EventSource, FrameInfo, open_events
from basicsr.utils.inference_errors import InferenceError, InferenceWarning

__all__ = ['InferenceError', 'InferenceWarning', 'inference_methods', 'canonical_method', 'load_method',
           'recognise_state_dict', 'deblur', 'deblur_file', 'deblur_frames', 'deblur_recording', 'make_denoiser',
           'read_image', 'deblur_window', 'frame_inputs', 'network_inputs', 'check_out', 'write_result',
           'write_record', 'RESULT_KINDS', 'VIDEO_FILE', 'EVENT_VIDEO_FILE', 'SideBySideVideo', 'write_events_video',
           'run_summary', 'event_video_summary', 'EventSource', 'FrameInfo', 'open_events']
