"""Reading the WAV files MixMonitor writes: their length, and how loud a stretch of them is."""

from __future__ import annotations

import io
import math
import wave
from array import array

from kernel.exceptions import InputError


def duration(data: bytes, where: str) -> float:
    """Seconds of audio; InputError naming `where` if the bytes are not a readable WAV."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            frames, rate = w.getnframes(), w.getframerate()
            if rate <= 0 or len(data) < 44 + frames * w.getsampwidth() * w.getnchannels():
                raise InputError(f"{where}: truncated WAV ({len(data)} bytes for {frames} frames)")
            return frames / rate
    except (wave.Error, EOFError) as exc:
        raise InputError(f"{where}: not a WAV file ({exc})") from exc


def loudness(data: bytes, start_s: float, end_s: float) -> float:
    """RMS of 16-bit mono samples between two times (0.0 is digital silence)."""
    with wave.open(io.BytesIO(data)) as w:
        rate = w.getframerate()
        w.setpos(max(0, int(start_s * rate)))
        samples = array("h", w.readframes(max(0, int((end_s - start_s) * rate))))
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0
