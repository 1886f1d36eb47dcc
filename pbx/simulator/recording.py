"""MixMonitor for the simulator: real WAV files (8 kHz, 16-bit, mono) with the muted spans silent.

There is no audio in the simulator, so a recording holds a steady synthetic
voice-band signal (300 Hz and 520 Hz tones, amplitude-modulated at 3 Hz)
wherever it was not muted, and digital silence wherever MixMonitorMute was
on: what a recording and PCI pause test needs to tell apart.
"""

from __future__ import annotations

import math
import wave
from array import array
from dataclasses import dataclass, field
from pathlib import Path

RATE = 8000


def _voice_second() -> bytes:
    samples = array(
        "h",
        (
            int(
                6000
                * (0.6 + 0.4 * math.sin(2 * math.pi * 3 * n / RATE))
                * (0.6 * math.sin(2 * math.pi * 300 * n / RATE) + 0.4 * math.sin(2 * math.pi * 520 * n / RATE))
            )
            for n in range(RATE)
        ),
    )
    return samples.tobytes()


_VOICE = _voice_second()


@dataclass
class Recording:
    """One MixMonitor on one channel."""

    path: Path
    started: float
    mutes: list[list[float]] = field(default_factory=list)

    def mute(self, on: bool, at: float) -> None:
        """Start or end a muted span."""
        if on and not (self.mutes and len(self.mutes[-1]) == 1):
            self.mutes.append([at])
        elif not on and self.mutes and len(self.mutes[-1]) == 1:
            self.mutes[-1].append(at)

    def write(self, stopped: float) -> Path:
        """Write the WAV covering started..stopped; returns its path."""
        total = max(0, int((stopped - self.started) * RATE))
        audio = bytearray((_VOICE * (total // RATE + 1))[: total * 2])
        for span in self.mutes:
            begin = int((span[0] - self.started) * RATE)
            end = int(((span[1] if len(span) > 1 else stopped) - self.started) * RATE)
            begin, end = max(0, begin), min(total, end)
            if end > begin:
                audio[begin * 2 : end * 2] = bytes((end - begin) * 2)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(self.path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(bytes(audio))
        return self.path
