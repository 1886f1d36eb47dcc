"""`callcenter check-pbx` against the real Asterisk: a complete PBX (contrib/asterisk as shipped) and a deliberately incomplete one.

The incomplete PBX lacks the `system` write and `dialplan` read classes, the
attended-transfer code, contrib's dialplan, a flow's prompts and a configured
queue; it also runs with `live_dangerously = yes` and func_env, so its prompts
are looked up with STAT() on the PBX, while the complete one's are looked up
on disk (Asterisk blocks STAT for AMI by default).
"""

from __future__ import annotations

import contextlib
import io
import re
import wave
from dataclasses import dataclass
from pathlib import Path

import pytest

from callcenter.cli import main
from tests.realpbx import CONTRIB, DATA, Asterisk, free_port, run_script

FLOW = """\
flow: {name}
entry: {{context: callcenter-ivr}}
languages: [en]
default_language: en
start: hello
nodes:
  hello: {{kind: play, prompt: cctest/{prefix}hello, next: menu}}
  menu:
    kind: menu
    prompt: cctest/{prefix}menu
    invalid_prompt: cctest/{prefix}invalid
    options: {{"1": support, "2": sales}}
    on_fail: support
  support: {{kind: queue, queue: support, context: callcenter-queues}}
  sales: {{kind: queue, queue: sales, context: callcenter-queues}}
"""


@dataclass
class Run:
    code: int
    out: str
    err: str

    def line(self, start: str) -> str:
        """The one line that starts with `start`."""
        found = [line for line in self.out.splitlines() if line.startswith(start)]
        assert len(found) == 1, f"{start!r}: {found}\n{self.out}"
        return found[0]


def check_pbx(folder: Path, port: int, secret: str, flows: list[Path], queues: tuple[str, ...] = ("support", "sales")) -> Run:
    cfg = folder / "callcenter.toml"
    cfg.write_text(
        f'[ami]\nhost = "127.0.0.1"\nport = {port}\nusername = "callcenter"\nsecret = "{secret}"\nconnect_timeout = 5.0\n'
        + "".join(f"[acd.queues.{q}]\n" for q in queues)
    )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(cfg), "check-pbx", "--flows", *map(str, flows)])
    return Run(code, out.getvalue(), err.getvalue())


def flow(folder: Path, name: str, prefix: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(FLOW.format(name=name, prefix=prefix))
    return path


def silence(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)


def prompts(folder: Path) -> None:
    """The prompts of flow(prefix=""), in folder/prompts/sounds/cctest/ (two wav, one gsm), which `run` links into sounds/en/."""
    for name in ("hello", "menu"):
        silence(folder / "prompts" / "sounds" / "cctest" / f"{name}.wav")
    (folder / "prompts" / "sounds" / "cctest" / "invalid.gsm").write_bytes(b"\xd8" + b"\0" * 32)


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    """contrib/asterisk as shipped, with the test flow's prompts (wav, and one gsm) in sounds/en/cctest/."""
    if run_script() is None:
        pytest.skip("no Asterisk build: ../shared/asterisk/run not found and CALLCENTER_TEST_ASTERISK not set")
    folder = tmp_path_factory.mktemp("complete")
    prompts(folder)
    asterisk = Asterisk(
        folder / "pbx",
        [
            str(DATA / "queues.conf"),
            f"extensions.conf+={CONTRIB / 'extensions.conf'}",
            f"extensions.conf+={DATA / 'extensions.conf'}",
            str(CONTRIB / "features.conf"),
            str(folder / "prompts"),
        ],
    ).start()
    try:
        yield asterisk, check_pbx(folder, asterisk.port, asterisk.secret, [flow(folder, "checked")])
    finally:
        asterisk.stop()


@pytest.fixture(scope="module")
def incomplete(tmp_path_factory):
    """No system write, no dialplan read, no atxfer code, no contrib dialplan; a flow without prompts; a queue app_queue lacks."""
    if run_script() is None:
        pytest.skip("no Asterisk build: ../shared/asterisk/run not found and CALLCENTER_TEST_ASTERISK not set")
    folder = tmp_path_factory.mktemp("incomplete")
    shipped = (CONTRIB / "manager.conf").read_text()
    manager = re.sub(r"^(read\s*=.*?),\s*dialplan", r"\1", shipped, flags=re.M)
    manager = re.sub(r"^(write\s*=.*?),\s*system", r"\1", manager, flags=re.M)
    assert manager.count("dialplan") < shipped.count("dialplan") and "reporting,system" not in manager
    (folder / "manager.conf").write_text(manager)
    (folder / "features.conf").write_text("[featuremap]\n")
    (folder / "asterisk.conf.append").write_text("live_dangerously = yes\n")  # lands in [options]: STAT() over AMI
    (folder / "modules.conf.append").write_text("load => func_env.so\n")
    prompts(folder)
    asterisk = Asterisk(
        folder / "pbx",
        [
            str(DATA / "queues.conf"),
            f"extensions.conf+={DATA / 'extensions.conf'}",
            str(folder / "features.conf"),
            str(folder / "asterisk.conf.append"),
            str(folder / "modules.conf.append"),
            str(folder / "prompts"),
        ],
        manager=folder / "manager.conf",
    ).start()
    try:
        flows = [flow(folder, "unrecorded", prefix="absent-"), flow(folder, "checked")]
        yield asterisk, check_pbx(folder, asterisk.port, asterisk.secret, flows, queues=("support", "sales", "nosuch"))
    finally:
        asterisk.stop()


def test_complete_pbx_is_all_ok(complete):
    _, run = complete
    print(run.out)
    assert run.code == 0, run.out + run.err
    lines = run.out.splitlines()
    assert lines and all(line.startswith("ok      ") for line in lines), run.out
    for what in (
        "write call",
        "write originate",
        "write agent",
        "write agi",
        "write reporting",
        "write system",
        "read call",
        "read agent",
        "read dtmf",
        "read agi",
        "read system",
        "read dialplan",
        "timestampevents",
        "modules loaded: res_agi, app_queue",
        "attended-transfer",
        "dialplan [callcenter-inbound]",
        "dialplan [callcenter-ivr]: s, T, fallback",
        "dialplan [callcenter-queues]: support, sales",
        "dialplan [callcenter-callback]",
        "dialplan [callcenter-outbound]",
        "dialplan [callcenter-transfer]: 8001, 8002",
        "queue support in app_queue",
        "queue sales in app_queue",
        "prompts of flow 'checked': all 3 found",
    ):
        assert any(line.startswith(f"ok      {what}") for line in lines), f"{what}:\n{run.out}"
    assert run.line("ok      attended-transfer").endswith(": *2")
    assert "looked up on this host's disk" in run.line("ok      prompts of flow")


def test_incomplete_pbx_says_what_is_missing(incomplete):
    _, run = incomplete
    print(run.out)
    assert run.code == 1, run.out + run.err
    assert "Permission denied" in run.line("MISSING write system")
    assert "VarSet" in run.line("MISSING read dialplan")
    assert "atxfer = *2" in run.line("MISSING attended-transfer")
    for context in (
        "callcenter-inbound",
        "callcenter-ivr",
        "callcenter-queues",
        "callcenter-callback",
        "callcenter-outbound",
        "callcenter-transfer",
    ):
        assert "include contrib/asterisk/extensions.conf" in run.line(f"MISSING dialplan [{context}]")
    prompts = run.line("MISSING prompts of flow 'unrecorded': 3 of 3 missing")
    assert "STAT()" in prompts and "cctest/absent-hello (hello)" in prompts and "cctest/absent-invalid (menu)" in prompts
    assert "looked up with STAT() on the PBX" in run.line("ok      prompts of flow 'checked': all 3 found")
    assert "queue reload all" in run.line("MISSING queue nosuch in app_queue ([acd.queues])")
    # what is there is still ok; what cannot be seen without system write is UNKNOWN, not a failure
    for what in (
        "write call",
        "write originate",
        "write agent",
        "write agi",
        "write reporting",
        "read call",
        "read system",
        "timestampevents",
        "queue support",
        "queue sales",
        "modules loaded: res_agi, app_queue, app_mixmonitor",
    ):
        run.line(f"ok      {what}")
    for what in ("read agent", "read dtmf", "read agi", "modules "):
        assert "cannot be checked" in run.line(f"UNKNOWN {what}")
    assert all(re.match(r"(ok      |MISSING |UNKNOWN )\S", line) for line in run.out.splitlines()), run.out


def test_refused_login_is_one_line_and_exit_3(complete, tmp_path):
    asterisk, _ = complete
    run = check_pbx(tmp_path, asterisk.port, "not-the-secret", [])
    assert run.code == 3 and run.out == ""
    assert len(run.err.strip().splitlines()) == 1 and "refused login for user 'callcenter'" in run.err


def test_no_pbx_is_one_line_and_exit_1(tmp_path):
    run = check_pbx(tmp_path, free_port(), "secret", [])
    assert run.code == 1 and run.out == ""
    assert len(run.err.strip().splitlines()) == 1 and "cannot reach the AMI at 127.0.0.1:" in run.err


def test_config_error_is_exit_2(tmp_path):
    cfg = tmp_path / "callcenter.toml"
    cfg.write_text('[ami]\nport = "not a number"\nsecret = "s"\n')
    assert main(["--config", str(cfg), "check-pbx", "--flows"]) == 2
