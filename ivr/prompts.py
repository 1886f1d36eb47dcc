"""The IVR's prompts as sound files: the texts of contrib/prompts/prompts.yaml spoken by espeak-ng and made by sox into
8 kHz mono 16-bit PCM WAV (what Asterisk's format_wav plays with no transcoding to a phone's 8 kHz), `<out>/<name>.wav`.

The repository ships texts, not audio, so a fresh PBX has every prompt the flows name. A file the generator did not write
itself (a recorded voice under the prompt's name, in any format Asterisk reads) is never overwritten; when it is in
another format, the generator's own WAV of that prompt is removed (with two formats Asterisk plays the cheaper one to
transcode, which would be ours). What it wrote is in `<out>/.prompts.json` (the text and the file's hash of each).

    python -m ivr.prompts contrib/prompts/prompts.yaml var/prompts/sounds
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from kernel.exceptions import CallCenterError, ConfigError, InputError

log = logging.getLogger(__name__)

VOICES = {"pt-br": "pt-br", "pt": "pt-br", "en": "en-us", "en-us": "en-us"}  # a flow's language -> espeak-ng's voice
TOOLS = {"espeak-ng": "espeak-ng", "sox": "sox"}  # program -> Debian package
SPEED = 150  # words per minute: espeak-ng's 175 is quick for a phone line
RENDER = f"espeak-ng -s {SPEED}, sox 8000 Hz mono 16-bit gain -n -3"  # part of each prompt's source hash: changing it re-renders
NAME = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
# Extensions Asterisk's format modules read: a recording under one of them takes the prompt's place.
SOUND_FORMATS = {
    "wav",
    "wav16",
    "gsm",
    "ulaw",
    "ul",
    "mu",
    "pcm",
    "alaw",
    "al",
    "sln",
    "raw",
    "sln12",
    "sln16",
    "sln24",
    "sln32",
    "sln44",
    "sln48",
    "sln96",
    "sln192",
    "g722",
    "g729",
    "g723",
    "g723sf",
    "g726-16",
    "g726-24",
    "g726-32",
    "g726-40",
    "g719",
    "ilbc",
    "ogg",
    "oga",
    "siren7",
    "siren14",
    "vox",
    "h263",
    "h264",
}
MANIFEST = ".prompts.json"


class ToolMissing(ConfigError):
    """espeak-ng or sox is not installed: prompts cannot be made, and the message says which package to install."""


def load(spec: Path) -> dict[str, list[tuple[str, str]]]:
    """The spec as name -> [(espeak-ng voice, text), ...]; InputError naming the file and the prompt when malformed."""
    try:
        data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{spec}: cannot read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"{spec}:{mark.line + 1 if mark else '?'}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict) or not data:
        raise InputError(f"{spec}: expected a mapping of prompt names to {{lang, text}}")
    prompts: dict[str, list[tuple[str, str]]] = {}
    for name, entry in data.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise InputError(f"{spec}: {name!r} is not a prompt name (letters, digits, - and _, in folders: cc/main-menu-pt)")
        parts = entry if isinstance(entry, list) else [entry]
        prompts[name] = []
        for part in parts:
            if not isinstance(part, dict) or set(part) != {"lang", "text"} or not isinstance(part["text"], str) or not part["text"].strip():
                raise InputError(f'{spec}: {name}: each part is {{lang: pt-BR | en, text: "..."}} with a text')
            voice = VOICES.get(str(part["lang"]).lower())
            if voice is None:
                raise InputError(f"{spec}: {name}: unknown lang {part['lang']!r} (one of pt-BR, en)")
            prompts[name].append((voice, part["text"].strip()))
    return prompts


def build(spec: Path, out: Path) -> list[Path]:
    """Render every prompt of `spec` that is not up to date into `out/<name>.wav`; returns the files written this run.

    Up to date: a file we wrote that is newer than the spec or was made from the same text, or any file we did not write.
    """
    spec, out = Path(spec), Path(out)
    prompts = load(spec)
    manifest_path = out / MANIFEST
    try:
        manifest: dict[str, dict[str, str]] = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    spec_time = spec.stat().st_mtime
    written: list[Path] = []
    for name in sorted(set(manifest) - set(prompts)):
        # A prompt gone from the spec: its WAV goes too, if it is still ours.
        target = out / f"{name}.wav"
        if _ours(target, manifest.pop(name)):
            target.unlink()
    for name, parts in prompts.items():
        target = out / f"{name}.wav"
        source = hashlib.sha256(json.dumps([RENDER, parts], ensure_ascii=False).encode()).hexdigest()
        mine = manifest.get(name)
        ours = mine is not None and _ours(target, mine)
        recorded = [p for p in target.parent.glob(f"{target.stem}.*") if p != target and p.suffix[1:].lower() in SOUND_FORMATS]
        if (target.exists() and not ours) or recorded:
            if ours:
                target.unlink()
            manifest.pop(name, None)
            log.info("%s: a recording is in place (%s), left as it is", name, (recorded or [target])[0].name)
            continue
        if ours and mine is not None and (target.stat().st_mtime > spec_time or mine.get("source") == source):
            continue
        _render(parts, target)
        manifest[name] = {"source": source, "sha256": _sha256(target)}
        written.append(target)
    out.mkdir(parents=True, exist_ok=True)
    scratch = manifest_path.with_suffix(".tmp")
    scratch.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    os.replace(scratch, manifest_path)
    return written


def _ours(target: Path, entry: dict[str, str]) -> bool:
    """Whether the file is still the one we wrote (a recording copied over it is not)."""
    return target.is_file() and _sha256(target) == entry.get("sha256")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tools() -> dict[str, str]:
    """The programs' paths; ToolMissing naming each one absent, since nothing can be rendered without them."""
    found = {tool: shutil.which(tool) for tool in TOOLS}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        raise ToolMissing(
            f"{' and '.join(missing)} not found: prompts are spoken by espeak-ng and converted by sox; "
            f"install {' '.join(TOOLS[t] for t in missing)} (Debian: apt-get install {' '.join(TOOLS[t] for t in missing)}; "
            f"`make test` and `make demo` do it)"
        )
    return {tool: str(path) for tool, path in found.items()}


def _render(parts: list[tuple[str, str]], target: Path) -> None:
    """Speak each part with its voice, join them, and write the WAV Asterisk reads; the file appears whole or not at all."""
    tools = _tools()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".render-") as tmp:
        spoken = []
        for i, (voice, text) in enumerate(parts):
            wav = Path(tmp) / f"part{i}.wav"
            _run([tools["espeak-ng"], "-v", voice, "-s", str(SPEED), "-b", "1", "--stdin", "-w", str(wav)], text, target)
            spoken.append(str(wav))
        made = Path(tmp) / "prompt.wav"
        _run(
            [tools["sox"], *spoken, "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(made), "gain", "-n", "-3"],
            None,
            target,
        )
        os.replace(made, target)


def _run(argv: list[str], text: str | None, target: Path) -> None:
    """One tool run; its own message when it fails, naming the prompt."""
    done = subprocess.run(argv, input=text, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CallCenterError(f"{target.name}: {Path(argv[0]).name} failed ({done.returncode}): {done.stderr.strip()[:500]}")


def main(argv: list[str] | None = None) -> int:
    """`python -m ivr.prompts SPEC OUT`: 0 done, 1 a bad spec or a tool failing, 2 a tool missing."""
    parser = argparse.ArgumentParser(
        prog="python -m ivr.prompts", description="Speak the IVR's prompt texts into WAV files Asterisk plays."
    )
    parser.add_argument("spec", type=Path, help="the prompt texts (contrib/prompts/prompts.yaml)")
    parser.add_argument("out", type=Path, help="the sounds folder to write <name>.wav into (var/prompts/sounds)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        written = build(args.spec, args.out)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CallCenterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(written)} prompt(s) made in {args.out}" if written else f"prompts in {args.out} up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
