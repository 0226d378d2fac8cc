"""Decoding a video on its own thread: packets demuxed (every stream's, for their byte
positions), frames decoded, shown to the scene-cut detector, sampled and prepared into the
buffer; damage counted (``Decoded``), never invented, and where decoding stopped said.

``frames_corrupt`` counts the frames damaged data cost: a packet that fails to decode (counted
and skipped), the frames a demuxer jumps over when it resyncs past damaged bytes (``Reach``:
the byte positions of the packets, every stream, show the bytes skipped; the video's
timestamps, the frames), and the frames a file declares after damaged data the demuxer cannot
read past (``short_of_declared``)."""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpress.deploy.scenecuts import SceneCuts, detect_size
from modelpress.deploy.video.frames import Preparer, Sampler, VideoError, sws_threads
from modelpress.errors import first_line
from modelpress.evaluate.benchmark import clock

if TYPE_CHECKING:
    from modelpress.deploy.video.processor import VideoProcessor
    from modelpress.deploy.video.timeline import Buffer


@dataclass
class Decoded:
    """What the decode thread counted (read by the consumer once decoding has finished)."""

    decoded: int = 0
    sampled: int = 0
    skipped_quality: int = 0
    corrupt: int = 0
    scene_cuts: int = 0
    last_index: int | None = None
    last_time: float | None = None
    stopped_at: dict[str, Any] | None = None
    first_error: str | None = None
    error: BaseException | None = None


def open_video(av: Any, path: str) -> Any:
    if "://" not in path:
        p = Path(path)
        if not p.exists():
            raise VideoError(f"{path}: no such video file")
        if p.is_dir():
            raise VideoError(f"{path}: is a folder; give a video file")
    try:
        container = av.open(path, mode="r")
    except av.error.FFmpegError as e:
        raise VideoError(f"{path}: not a video PyAV can read ({first_line(e)})") from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no stream"]
        container.close()
        raise VideoError(f"{path}: holds no video stream ({', '.join(kinds)} only)")
    return container


def check_video(path: str | Path, max_consecutive_errors: int = 25) -> None:
    """Raise VideoError unless ``path`` opens, holds a video stream and its first frame
    decodes: a cheap check of every input before any work starts."""
    from modelpress.extras import require

    av = require("av", "video", "modelpress video")
    failures, first = 0, None
    with open_video(av, str(path)) as container:
        try:
            for packet in container.demux(container.streams.video[0]):
                try:
                    if packet.decode():
                        return
                except av.error.FFmpegError as e:  # failures before any frame: in a row
                    failures, first = failures + 1, first or first_line(e)
                    if failures >= max_consecutive_errors:
                        break
        except av.error.FFmpegError as e:  # the demuxer
            failures, first = failures + 1, first or first_line(e)
    raise VideoError(nothing_decodes(str(path), failures, first))


def nothing_decodes(path: str, failures: int, first: str | None) -> str:
    why = (
        f"{failures} packet(s) failed to decode, first: {first}"
        if failures
        else "the video stream holds none: empty or cut short"
    )
    return f"{path}: no frame decodes ({why})"


def decode(proc: VideoProcessor, av: Any, container: Any, buffer: Buffer, counts: Decoded) -> None:
    """The decode thread: every packet of ``container`` into ``buffer`` as ``proc`` samples
    and prepares frames; any error is handed to the consumer in ``counts.error``."""
    try:
        with container:
            demux(proc, av, container, buffer, counts)
    except BaseException as e:  # handed to the consumer, which raises it
        counts.error = e
    finally:
        buffer.finish()


def demux(proc: VideoProcessor, av: Any, container: Any, buffer: Buffer, counts: Decoded) -> None:
    stream = container.streams.video[0]
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    sampler = Sampler(proc.sampling, slack=0.25 / rate)
    prep = Preparer(proc, buffer, counts)
    cuts = Cuts(proc.scene_cuts, rate, counts, sampler, prep)
    reach = Reach(rate, container.name)
    errors_in_row = 0

    def failed(e: Exception) -> bool:
        """Count a failure; True when it is one too many in a row."""
        nonlocal errors_in_row
        counts.corrupt += 1
        reach.failed += 1
        errors_in_row += 1
        counts.first_error = counts.first_error or first_line(e)
        if errors_in_row < proc.max_consecutive_errors:
            return False
        counts.stopped_at = {
            "frame": counts.last_index,
            "time": counts.last_time,
            "kind": "errors",
            "reason": f"{errors_in_row} packets in a row failed to decode "
            f"(first: {counts.first_error})",
        }
        return True

    # every stream's packets: their byte positions show the data a demuxer skipped
    packets = container.demux()
    while not buffer.closed:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as e:  # the demuxer: a fresh demux reads on from here
            if failed(e):
                break
            packets = container.demux()
            continue
        gap = reach.see(packet)
        if packet.stream.index != stream.index:
            continue
        reach.packets += 1 if packet.size else 0
        lost = reach.lost_frames(packet, gap)
        if lost:  # the demuxer resynced past damaged bytes: the frames between are gone
            counts.corrupt += lost
            counts.first_error = counts.first_error or (
                f"{gap} damaged bytes skipped by the demuxer, {lost} frames with them"
            )
        try:
            frames = packet.decode()
        except av.error.FFmpegError as e:  # InvalidDataError and its kin: a corrupt packet
            if reach.cut_short(packet):  # the last packet of a copy cut short: not damage
                continue
            if failed(e):
                break
            continue
        errors_in_row = 0
        for frame in frames:
            index = counts.decoded
            counts.decoded += 1
            t = float(frame.time) if frame.time is not None else index / rate
            counts.last_index, counts.last_time = index, t
            if not cuts.add(frame, index, t):
                return  # the consumer has gone
    if not cuts.finish():  # the frames the detector held, on to sampling
        return
    prep.flush()
    if counts.stopped_at is not None:  # too many errors in a row: decoding ended there
        return
    # packets the decoder dropped without an error (no frame, even at the flush): damaged
    # too, in a file already seen damaged (a healthy stream may carry frameless packets)
    dropped = reach.packets - counts.decoded - reach.failed
    if dropped > 0 and counts.corrupt:
        counts.corrupt += dropped
    counts.stopped_at = short_of_declared(container, stream, counts, rate, reach)


class Reach:
    """How far into the file the demuxer read and what it jumped over: the byte span of every
    packet (any stream), the video packets' timestamps."""

    GAP_BYTES = 64  # more than container framing between packets (Matroska: 6-23 bytes)

    def __init__(self, rate: float, path: str) -> None:
        self.size: int | None = None  # the file's size in bytes (a local file)
        if "://" not in path:
            with contextlib.suppress(OSError):
                self.size = Path(path).stat().st_size
        self.end: int | None = None  # the byte after the furthest packet read
        self.packets = 0  # the video's packets, read
        self.failed = 0  # … that failed to decode (a demuxer error counts one too)
        self.largest = 0  # the largest packet, in bytes
        self.gap = 0  # the largest jump in bytes since the last video packet
        self.last_t: float | None = None  # the video's last decode timestamp, in seconds
        self.step = 1.0 / rate  # one frame, in seconds

    def see(self, packet: Any) -> int:
        """Note a packet's bytes; the largest jump since the last video packet."""
        pos, size = packet.pos, packet.size
        if pos is not None and pos >= 0 and size:
            if self.end is not None:
                self.gap = max(self.gap, pos - self.end)
            self.end = max(self.end or 0, pos + size)
            self.largest = max(self.largest, size)
        gap = self.gap
        return gap

    def lost_frames(self, packet: Any, gap: int) -> int:
        """The frames a video packet's timestamp says were skipped, when bytes were skipped
        before it too (a gap in timestamps alone is a variable frame rate, not damage)."""
        self.gap = 0
        ts = packet.dts if packet.dts is not None else packet.pts
        if ts is None or packet.time_base is None or not packet.size:
            return 0
        t = float(ts * packet.time_base)
        lost = 0
        if self.last_t is not None and gap > self.GAP_BYTES:
            lost = max(0, round((t - self.last_t) / self.step) - 1)
        if packet.duration and packet.time_base is not None:
            self.step = float(packet.duration * packet.time_base) or self.step
        if self.last_t is None or t > self.last_t:
            self.last_t = t
        return lost

    def cut_short(self, packet: Any) -> bool:
        """Whether the packet is the file's last bytes, read short (an index, MP4's, names
        more bytes than a copy cut short still has; the demuxer marks the packet corrupt)."""
        pos = packet.pos
        return (
            self.size is not None
            and pos is not None
            and pos + packet.size >= self.size
            and bool(getattr(packet, "is_corrupt", False))
        )

    def unread(self) -> tuple[int, int] | None:
        """(bytes after the furthest packet read, file size) of a local file, else None."""
        if self.end is None or self.size is None:
            return None
        return self.size - self.end, self.size

    def tail_allowance(self) -> int:
        """Bytes a file may hold after its last packet without data left unread: a partial
        packet where a copy was cut, an index (Matroska's Cues) at the end."""
        return max(2 * self.largest, 4096)


class Cuts:
    """Every decoded frame → the scene-cut detector, and on to sampling once the detector has
    seen the ``lag`` frames after it (the adaptive detector compares a frame with those): a cut
    is counted, makes adaptive sampling dense from the cut's own frame on, and marks the first
    sampled frame from it on. Holds ``lag`` decoded frames at most."""

    def __init__(
        self,
        cuts: SceneCuts,
        rate: float,
        counts: Decoded,
        sampler: Sampler,
        prep: Preparer,
    ) -> None:
        self.cutter = cuts.cutter(rate)
        self.lag = self.cutter.lag
        self.counts, self.sampler, self.prep = counts, sampler, prep
        self.size: tuple[int, int] | None = None  # the detector's frame size, from the first
        self.pending: deque[tuple[Any, int, float, float]] = deque()  # frame, index, time, when
        self.cuts: set[int] = set()  # pending frames that start a scene
        self.carry = False  # a cut on a frame that was not sampled: the next sampled one's
        from av.video.reformatter import VideoReformatter

        self.reformatter = VideoReformatter()

    def add(self, frame: Any, index: int, t: float) -> bool:
        """False when the consumer has gone."""
        self.size = self.size or detect_size(frame.width, frame.height)
        w, h = self.size  # every frame at the first one's size (the detector compares pixels)
        bgr = self.reformatter.reformat(  # AREA: a larger frame's pixels averaged, noise too
            frame, format="bgr24", width=w, height=h, interpolation="AREA", **sws_threads()
        ).to_ndarray()
        self.pending.append((frame, index, t, clock()))
        self._found(self.cutter.feed(index, bgr))
        return self._release(index - self.lag)

    def finish(self) -> bool:
        self._found(self.cutter.finish())
        return self._release(None)

    def _found(self, indices: list[int]) -> None:
        for index in indices:
            self.counts.scene_cuts += 1
            t = next((t for _, i, t, _ in self.pending if i == index), None)
            if t is None:  # not pending (a detector later than its lag): the next sampled frame
                self.carry = True
                t = self.pending[-1][2] if self.pending else self.counts.last_time or 0.0
            self.cuts.add(index)
            self.sampler.cut(t)

    def _release(self, upto: int | None) -> bool:
        """Sample the pending frames up to decoded frame ``upto`` (None: all)."""
        while self.pending and (upto is None or self.pending[0][1] <= upto):
            frame, index, t, decoded_at = self.pending.popleft()
            if index in self.cuts:
                self.cuts.discard(index)
                self.carry = True
            if self.sampler.take(t, index):
                cut, self.carry = self.carry, False
                if not self.prep.add(frame, index, t, cut, decoded_at):
                    return False
        return True


def short_of_declared(
    container: Any, stream: Any, counts: Decoded, rate: float, reach: Reach
) -> dict[str, Any] | None:
    """Where decoding ended, when the file declares more than was decoded or counted corrupt:
    its frame count, else the stream's duration, else the container's (if it holds only this
    stream; an audio track may run longer than the video). Bytes left unread after the last
    packet mean damaged data the demuxer could not read past (``corrupt``: the frames declared
    after it are counted corrupt); none, a copy cut short (``truncated``)."""
    if counts.last_time is None:
        return None
    declared = int(stream.frames or 0)
    accounted = counts.decoded + counts.corrupt
    missing, short = 0, None
    if declared:
        if accounted < declared:
            missing = declared - accounted
            short = f"after {accounted} of the {declared} frames it declares"
    else:
        duration = start = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
            start = float((stream.start_time or 0) * stream.time_base)
        elif container.duration is not None and len(container.streams) == 1:
            duration = container.duration / 1e6  # AV_TIME_BASE
            start = (container.start_time or 0) / 1e6
        if duration is None or start is None:
            return None
        decoded_span = counts.last_time - start + 1.0 / rate
        if decoded_span < duration - 2.0 / rate:
            missing = max(0, round((duration - decoded_span) * rate))
            short = f"at {decoded_span:.2f} s of the {duration:.2f} s it declares"
    if short is None:
        return None
    where = {"frame": counts.last_index, "time": counts.last_time}
    unread = reach.unread()
    if unread is not None and unread[0] > reach.tail_allowance():
        counts.corrupt += missing
        return where | {
            "kind": "corrupt",
            "reason": f"damaged data at byte {reach.end} of {unread[1]}: the demuxer read "
            f"nothing in the {unread[0]} bytes after it, so the video ends {short}; the file "
            f"is not cut short, and the {missing} frames after the damage count as corrupt",
        }
    return where | {"kind": "truncated", "reason": f"the file ends {short} (truncated?)"}
