"""A video through a binary model: decoded packet by packet, sampled by timestamp, scored in
batches by worker threads, smoothed over time, decided by windows.

Threads: one decodes (PyAV), shows every frame to a PySceneDetect detector for scene cuts
(``deploy/scenecuts.py``) and prepares the sampled frames — sharpness and brightness for the
quality filter, the model's input — into a bounded buffer (a file waits when it is full;
``stream=True``, live input, drops the oldest frame instead and counts it). The caller's thread
takes batches from the buffer for ``workers`` scoring threads and turns the scores, in frame
order, into records: one per scored frame, one per complete window of ``window`` sampled
frames, a summary last. Nothing grows with the video's length: frames live in the buffer only,
records are yielded as they are made, and latencies go to a fixed-size reservoir.

Decoding never invents a frame. ``frames_corrupt`` counts the frames damaged data cost: a packet
that fails to decode (counted and skipped), the frames a demuxer jumps over when it resyncs past
damaged bytes (the byte positions of the packets, every stream, show the bytes skipped; the
video's timestamps, the frames), and the frames a file declares after damaged data the demuxer
cannot read past. ``stopped_at`` says where decoding ended early and why (``kind``):
``max_consecutive_errors`` failures in a row (``errors``), unreadable data mid-file with bytes
after it (``corrupt``), or a file that ends before the length it declares (``truncated``: only a
cut at the end). Only a file where nothing decodes is an error.
"""

from modelpress.deploy.video.decode import check_video
from modelpress.deploy.video.frames import (
    Quality,
    Sampling,
    VideoError,
    analysis_rgb,
    grey,
    model_input,
    sharpness,
)
from modelpress.deploy.video.processor import VideoProcessor
from modelpress.deploy.video.scoring import video_scorer

__all__ = [
    "Quality",
    "Sampling",
    "VideoError",
    "VideoProcessor",
    "analysis_rgb",
    "check_video",
    "grey",
    "model_input",
    "sharpness",
    "video_scorer",
]
