"""The sans-IO AMI codec: frames, banner, repairs, limits and the encoder."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx import codec as codec_module
from pbx.codec import AMICodec, Banner, FrameError, Message, encode
from tests.conftest import TRACES, trace_names


def messages(items):
    return [i for i in items if isinstance(i, Message)]


def trace_bytes(name: str) -> bytes:
    return b"".join(json.loads(line)["data"].encode() for line in open(TRACES / f"{name}.jsonl") if json.loads(line)["dir"] == "in")


def test_banner_then_login_response_and_event_in_one_read():
    codec = AMICodec()
    items = codec.feed(
        b"Asterisk Call Manager/13.0.0\r\nResponse: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\nEvent: FullyBooted\r\nStatus: Fully Booted\r\n\r\n"
    )
    assert items[0] == Banner("13.0.0")
    assert [m.response or m.event for m in messages(items)] == ["Success", "FullyBooted"]
    assert messages(items)[0].action_id == "1"


def test_value_containing_colons_and_empty_values_are_kept():
    [msg] = messages(
        AMICodec().feed(b"Event: RequestBadFormat\r\nRequestType: Action: NoSuchAction\r\nAccountCode: \r\nUserfield:\r\n\r\n")
    )
    assert msg["RequestType"] == "Action: NoSuchAction"
    assert msg["AccountCode"] == "" and msg["Userfield"] == ""


def test_repeated_headers_keep_every_value():
    [msg] = messages(AMICodec().feed(b"Response: Success\r\nOutput: line 1\r\nOutput: line 2\r\n\r\n"))
    assert msg["Output"] == "line 1"
    assert msg.output == ["line 1", "line 2"]


def test_follows_body_with_blank_line_is_one_message():
    codec = AMICodec()
    items = codec.feed(
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\nChannel   Location\r\n\r\n0 active channels\r\n--END COMMAND--\r\n\r\nEvent: Next\r\n\r\n"
    )
    follows, nxt = messages(items)
    assert follows.action_id == "7"
    assert follows.output == ["Channel   Location", "", "0 active channels"]
    assert nxt.event == "Next"


def test_invalid_utf8_is_repaired_and_reported_not_dropped():
    items = AMICodec().feed(b"Event: Newchannel\r\nCallerIDName: Jo\xe3o\r\n\r\n")
    [msg] = messages(items)
    assert msg["CallerIDName"] == "Jo\ufffdo"
    [error] = [i for i in items if isinstance(i, FrameError)]
    assert "UTF-8" in error.reason


def test_frame_without_event_or_response_is_skipped_with_its_offset():
    codec = AMICodec()
    codec.feed(b"Event: A\r\n\r\n")
    items = codec.feed(b"garbage here\r\n\r\nEvent: B\r\n\r\n")
    errors = [i for i in items if isinstance(i, FrameError)]
    assert [m.event for m in messages(items)] == ["B"]
    assert errors[0].offset == len(b"Event: A\r\n\r\n")


def test_huge_frame_is_skipped_and_memory_stays_bounded():
    codec = AMICodec(max_frame=4096)
    errors = []
    for _ in range(100):
        errors += [i for i in codec.feed(b"x" * 1000) if isinstance(i, FrameError)]
        assert codec.pending <= 4096 + 1000
    items = codec.feed(b"\r\n\r\nEvent: After\r\n\r\n")
    assert len(errors) == 1 and "limit" in errors[0].reason
    assert [m.event for m in messages(items)] == ["After"]


def test_bare_lf_frames_are_accepted():
    assert [m.event for m in messages(AMICodec().feed(b"Event: A\nX: 1\n\nEvent: B\n\n"))] == ["A", "B"]


class _Scans(bytearray):
    """The codec's buffer, counting the bytes its searches look at (bytes.find here, the terminator regex below)."""

    examined = 0

    def find(self, sub, start=0, end=None):  # type: ignore[override]
        stop = len(self) if end is None else min(end, len(self))
        found = super().find(sub, start, stop)
        _Scans.examined += (found + len(sub) if found >= 0 else stop) - start
        return found


class _CountedPattern:
    def __init__(self, pattern) -> None:
        self.pattern = pattern

    def search(self, buf, pos=0):
        match = self.pattern.search(buf, pos)
        _Scans.examined += (match.end() if match else len(buf)) - pos
        return match


@pytest.mark.parametrize("ending", [b"\r\n", b"\n"])
def test_a_big_frame_in_small_reads_is_scanned_once_not_from_its_start_on_every_read(ending, monkeypatch):
    """A pending frame used to be searched from its start on every read (a 1 MB frame in 512-byte reads: 14 s with CRLF,
    22 s after one bare-LF frame, which turned a slower path on for good); now each byte is looked at a few times."""
    monkeypatch.setattr(codec_module, "_TERMINATOR", _CountedPattern(codec_module._TERMINATOR))
    line = b"Variable: " + b"x" * 70 + ending
    first = b"Event: Lf\nA: b\n\n" if ending == b"\n" else b"Event: Lf\r\nA: b\r\n\r\n"
    stream = first + b"Event: Big" + ending + line * 3000 + ending + b"Event: After\r\nA: c\r\n\r\n"
    codec = AMICodec()
    codec._buf = _Scans()
    _Scans.examined = 0
    items = [item for at in range(0, len(stream), 512) for item in codec.feed(stream[at : at + 512])]
    assert [m.event for m in items] == ["Lf", "Big", "After"] and len(items[1].getall("Variable")) == 3000
    assert _Scans.examined <= 3 * len(stream), f"{_Scans.examined} bytes looked at for a {len(stream)}-byte stream"


def test_encode_refuses_line_breaks_in_values_and_names():
    with pytest.raises(ValueError, match="line break"):
        encode({"Action": "Originate", "Channel": "PJSIP/1001", "Exten": "123\r\nApplication: System"})
    with pytest.raises(ValueError):
        encode({"Action": "Ping", "Bad\nName": "x"})
    with pytest.raises(ValueError, match="no 'Action'"):
        encode({"Channel": "x"})


def test_encode_round_trips_through_the_codec_with_repeats():
    frame = {"Action": "Originate", "ActionID": "a1", "Variable": ["A=1", "B=2"], "Timeout": 30000}
    [msg] = messages(AMICodec().feed(encode(frame)))
    assert msg.action == "Originate" and msg.getall("Variable") == ["A=1", "B=2"] and msg["Timeout"] == "30000"
    assert encode(msg) == encode(frame)


@pytest.mark.parametrize("name", trace_names())
def test_every_real_trace_parses_without_errors(name):
    items = AMICodec().feed(trace_bytes(name))
    assert isinstance(items[0], Banner)
    assert not [i for i in items if isinstance(i, FrameError)]
    assert all(m.event or m.response for m in messages(items))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), name=st.sampled_from(trace_names()))
def test_any_split_of_a_real_stream_parses_to_the_same_frames(data, name):
    stream = trace_bytes(name)
    whole = AMICodec().feed(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=40)))
    codec = AMICodec()
    pieces = []
    last = 0
    for cut in cuts + [len(stream)]:
        pieces += codec.feed(stream[last:cut])
        last = cut
    assert pieces == whole


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(max_size=300), max_size=20))
def test_arbitrary_bytes_never_raise_out_of_the_codec(chunks):
    codec = AMICodec(max_frame=1024)
    for chunk in chunks:
        for item in codec.feed(chunk):
            assert isinstance(item, (Banner, Message, FrameError))
        assert codec.pending <= 1024 + 300 + 3
