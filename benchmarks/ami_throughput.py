"""AMI throughput on one core: panoramisk's parser alone vs our codec plus call tracker.

The stream is the real traces in ../shared/ami-traces repeated with fresh
Uniqueid/Linkedid values (so every repetition is a new set of calls), chunked
exactly as Asterisk's socket reads were recorded. Prints one JSON object.
Goal (issue 2): ours >= 100,000 events/s and no slower than panoramisk. It also times one 1 MB frame arriving in
512-byte reads, CRLF and bare-LF (issue 16: the codec once rescanned a pending frame from its start on every read).

    python benchmarks/ami_throughput.py [--frames 1000000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from panoramisk.ami_protocol import AMIProtocol  # noqa: E402

from pbx.codec import AMICodec, Message  # noqa: E402
from pbx.trace import read_trace  # noqa: E402
from pbx.tracker import CallTracker  # noqa: E402

TRACES = Path(os.environ.get("CALLCENTER_TRACES", Path(__file__).resolve().parent.parent.parent / "shared" / "ami-traces"))
_ID = re.compile(rb"\b(17\d{8})\.(\d+)\b")
_BANNER = b"Asterisk Call Manager/13.0.0\r\n"


def call_reads() -> list[list[bytes]]:
    """Each call trace's socket reads from Asterisk, without the banner."""
    out = []
    for path in sorted(TRACES.glob("*.jsonl")):
        reads = [r.data.encode() for r in read_trace(path) if r.dir == "in"]
        reads = [r.replace(_BANNER, b"") for r in reads]
        out.append([r for r in reads if r])
    return out


def build_stream(target_frames: int) -> tuple[list[bytes], int]:
    """Chunks holding at least `target_frames` frames, ids unique per repetition."""
    traces = call_reads()
    per_round = sum(b"".join(reads).count(b"\r\n\r\n") for reads in traces)
    rounds = -(-target_frames // per_round)
    chunks: list[bytes] = [_BANNER]
    for index in range(rounds):
        prefix = str(index).encode() + b"0"
        for reads in traces:
            chunks.extend(_ID.sub(lambda m, prefix=prefix: prefix + m.group(1) + b"." + m.group(2), read) for read in reads)
    return chunks, rounds * per_round


class _Sink:
    """Stands in for panoramisk's Manager: dispatch does nothing, so only parsing is timed."""

    save_stream = None
    events = 0

    def dispatch(self, message: object) -> None:
        self.events += 1


def run_panoramisk(chunks: list[bytes]) -> tuple[float, int]:
    protocol = AMIProtocol()
    protocol.connection_made(None)
    sink = _Sink()
    protocol.factory = sink
    protocol.encoding = "utf8"
    started = time.perf_counter()
    for chunk in chunks:
        protocol.data_received(chunk)
    return time.perf_counter() - started, sink.events


def run_ours(chunks: list[bytes], with_tracker: bool) -> tuple[float, int, int]:
    codec = AMICodec()
    tracker = CallTracker()
    frames = finished = 0
    started = time.perf_counter()
    t = 0.0
    for chunk in chunks:
        t += 0.0001
        for item in codec.feed(chunk):
            if type(item) is Message and "Event" in item:
                frames += 1
                if with_tracker:
                    for event in tracker.feed(item, t):
                        if event.record is not None:
                            finished += 1
    return time.perf_counter() - started, frames, finished


def big_frame_s(ending: bytes, size: int = 1 << 20, read: int = 512) -> float:
    """Seconds to take one `size`-byte event frame (lines ending in `ending`) arriving in `read`-byte reads, after one
    bare-LF frame (which once switched the codec to a slower path for the whole connection): linear in the frame."""
    line = b"Variable: " + b"x" * 70 + ending
    frame = b"Event: Big" + ending + line * (size // len(line)) + ending
    stream = _BANNER + b"Event: Lf\nA: b\n\n" + frame
    codec = AMICodec(max_frame=2 * size)
    started = time.perf_counter()
    items = [item for at in range(0, len(stream), read) for item in codec.feed(stream[at : at + read])]
    assert [type(i).__name__ for i in items] == ["Banner", "Message", "Message"], items[-1:]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    args = parser.parse_args()
    chunks, frames = build_stream(args.frames)
    gc.collect()
    pk_time, pk_frames = run_panoramisk(chunks)
    codec_time, codec_frames, _ = run_ours(chunks, with_tracker=False)
    ours_time, ours_frames, calls = run_ours(chunks, with_tracker=True)
    result = {
        "frames": frames,
        "bytes": sum(map(len, chunks)),
        "calls_finished": calls,
        "a_panoramisk_parse_events_per_s": round(pk_frames / pk_time),
        "codec_only_events_per_s": round(codec_frames / codec_time),
        "b_codec_plus_tracker_events_per_s": round(ours_frames / ours_time),
        "ratio_b_over_a": round((ours_frames / ours_time) / (pk_frames / pk_time), 2),
        "goal_b_events_per_s": 100_000,
        "events_seen": {"panoramisk": pk_frames, "ours": ours_frames},
        "one_1mb_frame_in_512_byte_reads_s": {"crlf": round(big_frame_s(b"\r\n"), 3), "bare_lf": round(big_frame_s(b"\n"), 3)},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
