"""Recordings: policy, pauses (the paused window of the WAV is silent), consent, encryption, playback rights and retention."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import subprocess
import sys
import wave
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import boto3
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from cti_panel.app import create_app
from cti_panel.controls import Directory
from cti_panel.users import Users
from ivr.flow import load_flow
from kernel import config
from kernel.db import make_engine, migrate
from kernel.exceptions import ActionError, ConfigError, Refused
from kernel.models import Recording, RecordingAccess
from kernel.who import Who
from recordings.library import Library
from recordings.policy import Kept, file_key, should_record, to_purge
from recordings.recorder import Active, Recorder
from recordings.vault import MAGIC, LocalStorage, Vault, VaultError, cipher, open_vault
from recordings.wav import duration, loudness
from tests.test_panel_browser import CallCenter
from tests.test_panel_controls import ask
from tests.waiting import until

KEY = base64.b64encode(bytes(range(32))).decode()
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def settings(**queues: config.RecordingPolicy) -> config.RecordingSettings:
    return config.RecordingSettings(queues=queues)


# pure ---------------------------------------------------------------------------
def test_policies_decide_per_queue_and_consent_wins():
    s = settings(
        support=config.RecordingPolicy(mode="all"),
        sales=config.RecordingPolicy(mode="sample", sample_pct=25),
        vip=config.RecordingPolicy(mode="never"),
        audit=config.RecordingPolicy(mode="on_demand"),
    )
    assert should_record(s, "support", "1.1", False) == (True, "policy_all")
    assert should_record(s, "support", "1.1", True) == (False, "opted_out")
    assert should_record(s, "vip", "1.1", False) == (False, "policy_never")
    assert should_record(s, "audit", "1.1", False) == (False, "on_demand")
    sampled = [should_record(s, "sales", f"1700000000.{n}", False)[0] for n in range(2000)]
    assert 0.21 < sum(sampled) / len(sampled) < 0.29
    assert sampled == [should_record(s, "sales", f"1700000000.{n}", False)[0] for n in range(2000)], "the same call, the same choice"


def test_file_names_are_by_date_queue_and_call_and_cannot_escape():
    assert file_key(NOW.timestamp(), "support", "1795400000.17") == "2026/11/23/support/1795400000.17.wav"
    assert file_key(NOW.timestamp(), "../../etc", "../passwd") == "2026/11/23/____etc/__passwd.wav"
    assert file_key(NOW.timestamp(), "a/b", "c/d") == "2026/11/23/a_b/c_d.wav"


def test_retention_keeps_holds_and_the_legal_minimum():
    s = config.RecordingSettings(
        default=config.RecordingPolicy(retention_days=30),
        min_retention_days=90,
        queues={"sales": config.RecordingPolicy(retention_days=400)},
    )
    rows = [
        Kept(1, "support", "551100", NOW - timedelta(days=95), False),
        Kept(2, "support", "551100", NOW - timedelta(days=60), False),
        Kept(3, "support", "551199", NOW - timedelta(days=200), True),
        Kept(4, "sales", "551100", NOW - timedelta(days=200), False),
    ]
    delete, kept = to_purge(rows, s, NOW)
    assert [r.id for r in delete] == [1] and [(r.id, why) for r, why in kept] == [(3, "legal hold")]
    delete, kept = to_purge(rows, s, NOW, customer="551100")
    assert [r.id for r in delete] == [1, 4]
    assert [(r.id, why) for r, why in kept] == [(2, "younger than the 90-day legal minimum")]


# the vault ----------------------------------------------------------------------
def test_encryption_fails_closed(tmp_path):
    with pytest.raises(ConfigError, match="recordings.key is missing"):
        cipher(config.RecordingSettings(encrypt=True))
    with pytest.raises(ConfigError, match="AES-256 needs 32"):
        cipher(config.RecordingSettings(encrypt=True, key=base64.b64encode(b"short").decode()))
    vault = Vault(LocalStorage(tmp_path), cipher(config.RecordingSettings(encrypt=True, key=KEY)))
    vault.put("a/b.wav", b"RIFF audio")
    stored = (tmp_path / "a" / "b.wav").read_bytes()
    assert stored.startswith(MAGIC) and b"RIFF audio" not in stored, "nothing in clear at rest"
    assert vault.get("a/b.wav") == b"RIFF audio"
    other = Vault(LocalStorage(tmp_path), cipher(config.RecordingSettings(encrypt=True, key=base64.b64encode(os.urandom(32)).decode())))
    with pytest.raises(VaultError, match="does not decrypt with the configured key"):
        other.get("a/b.wav")
    (tmp_path / "plain.wav").write_bytes(b"RIFF")
    with pytest.raises(VaultError, match="not encrypted although encryption is on"):
        vault.get("plain.wav")
    with pytest.raises(VaultError, match="leaves the storage folder"):
        vault.put("../escape.wav", b"x")


# on the simulator ---------------------------------------------------------------------
CONSENT = """\
flow: consent
entry: {context: callcenter-ivr}
languages: [en]
start: notice
nodes:
  notice: {kind: menu, prompt: cc/recording-notice, timeout: 3, retries: 1, options: {"8": optout, "1": support}, on_fail: support}
  optout: {kind: set, values: {RECORDING_OPT_OUT: "1"}, next: support}
  support: {kind: queue, queue: support, context: callcenter-queues}
"""


def recorded_call(tmp_path, recordings: config.RecordingSettings, script: str = "patient", pause: bool = False, on_demand: bool = False):
    (tmp_path / "consent.yaml").write_text(CONSENT)
    center = CallCenter(tmp_path, recordings=recordings, flows=[load_flow(tmp_path / "consent.yaml")])
    try:
        ask(center, "ana", "state", {"state": "available"})
        until(lambda: center.engine.board.agents.get("ana") and center.engine.board.agents["ana"].state == "available")
        center.call("5511977776666", script, "Local/s@callcenter-ivr" if script == "optout" else "Local/support@callcenter-queues")
        until(lambda: center.engine.board.call_of("ana") is not None and center.engine.board.call_of("ana").answered_at is not None, 15)
        if on_demand:
            ask(center, "ana", "record", {"op": "start"})
            center.talk(2)
        if pause:
            until(lambda: center.engine.recorder.active, 5)
            center.talk(3)
            ask(center, "ana", "record", {"op": "pause"})
            center.talk(4)
            ask(center, "ana", "record", {"op": "resume"})
            center.talk(3)
        ask(center, "ana", "hangup", {})
        until(lambda: center.store.count() > 0, 15)
        until(lambda: center.engine.recorder.idle, 10, "the recording indexed")
        return center, rows(center)
    finally:
        center.stop()


def rows(center) -> list[Recording]:
    with center.store.sessions() as s:
        return list(s.scalars(select(Recording)))


def test_a_call_is_recorded_and_the_paused_window_is_silent(tmp_path):
    center, found = recorded_call(tmp_path, config.RecordingSettings(encrypt=True, key=KEY), pause=True)
    [row] = found
    assert (row.status, row.queue, row.agent, row.caller_number, row.encrypted) == ("stored", "support", "ana", "5511977776666", True)
    assert row.key.endswith(f"/support/{row.linkedid}.wav") and row.key.startswith(row.started_at.strftime("%Y/%m/%d"))
    audio = center.engine.library.vault.get(row.key)
    assert hashlib.sha256(audio).hexdigest() == row.sha256 and len(audio) == row.size
    assert duration(audio, "x") == pytest.approx(row.duration_s, abs=0.001) and row.duration_s > 8
    [[start, end]] = row.paused
    assert end - start == pytest.approx(4, abs=0.5)
    assert loudness(audio, start + 0.2, end - 0.2) == 0.0, "nothing of the card number is in the file (PCI)"
    assert loudness(audio, 0.5, start - 0.5) > 1000 and loudness(audio, end + 0.5, row.duration_s - 0.5) > 1000
    assert not list((tmp_path / "spool").rglob("*.wav")), "no clear copy left in the spool"
    assert (tmp_path / "var" / "vault" / row.key).read_bytes().startswith(MAGIC)


def test_never_queues_are_not_recorded(tmp_path):
    _, found = recorded_call(tmp_path, settings(support=config.RecordingPolicy(mode="never")))
    assert found == []


def test_on_demand_queues_are_recorded_when_the_agent_asks(tmp_path):
    _, found = recorded_call(tmp_path, settings(support=config.RecordingPolicy(mode="on_demand")), on_demand=True)
    [row] = found
    assert row.status == "stored" and 2 < row.duration_s < 6


def test_a_caller_who_opts_out_is_not_recorded_and_the_index_says_so(tmp_path):
    _, found = recorded_call(tmp_path, config.RecordingSettings(), script="optout")
    [row] = found
    assert (row.status, row.key, row.note) == ("opted_out", None, "the caller asked not to be recorded")


# missing and corrupt files ------------------------------------------------------------
@pytest.fixture
def library(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/r.db")
    migrate(engine)
    s = config.RecordingSettings(queues={"support": config.RecordingPolicy(agents_hear_own=True)}, min_retention_days=90)
    return Library(sessionmaker(engine, expire_on_commit=False), open_vault(s, tmp_path / "vault"), s)


def finish(tmp_path, library, content: bytes | None) -> Recording:
    spool = tmp_path / "spool"
    active = Active("1795400000.5", "SIP/x", "2026/11/23/support/1795400000.5.wav", NOW.timestamp(), "support", "ana", "5511977776666")
    if content is not None:
        (spool / active.key).parent.mkdir(parents=True)
        (spool / active.key).write_bytes(content)

    async def send(action):
        return None

    recorder = Recorder(library.settings, spool, library, send, lambda c: None, NOW.timestamp, wait_for_file_s=0.3)
    asyncio.run(recorder.finish(active, NOW.timestamp() + 60))
    with library.sessions() as s:
        return s.scalars(select(Recording)).one()


def test_a_missing_file_is_indexed_as_missing(tmp_path, library):
    row = finish(tmp_path, library, None)
    assert row.status == "missing" and "no file at" in row.note


def test_a_corrupt_file_is_indexed_as_corrupt_and_not_served(tmp_path, library):
    row = finish(tmp_path, library, b"RIFF\x00\x00garbage")
    assert row.status == "corrupt" and "not a WAV" in row.note
    boss = Who(9, "sue", "supervisor", "en", None, None, None, ())
    with pytest.raises(VaultError, match="has no audio"):
        library.fetch(row.id, boss, "127.0.0.1", "play")


def test_a_file_with_no_audio_is_indexed_as_empty_not_stored(tmp_path, library):
    header = tmp_path / "header.wav"
    with wave.open(str(header), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
    row = finish(tmp_path, library, header.read_bytes())
    assert (row.status, row.key) == ("empty", None) and "no audio" in row.note


def test_a_mixmonitor_asterisk_refuses_is_indexed_as_failed_and_told_to_the_agent(tmp_path, library):
    async def send(action):
        raise ActionError(action["Action"], "Permission denied")

    recorder = Recorder(library.settings, tmp_path / "spool", library, send, lambda c: None, NOW.timestamp)
    with pytest.raises(Refused, match="did not start: MixMonitor: Permission denied"):
        asyncio.run(recorder.request("1795400000.5", "ana", "start", "SIP/x-1", "support"))
    with library.sessions() as s:
        row = s.scalars(select(Recording)).one()
    assert (row.status, row.agent) == ("failed", "ana") and "Permission denied" in row.note and not recorder.active


# playback rights, Range, the access log -------------------------------------------------------
def test_playback_is_for_those_allowed_streamed_with_ranges_and_logged(tmp_path, library):
    wav = tmp_path / "tone.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(b"\x01\x02" * 16000)
    row = finish(tmp_path, library, wav.read_bytes())
    users = Users(library.sessions)
    for login, role, agent in (("ana", "agent", "ana"), ("bruno", "agent", "bruno"), ("sue", "supervisor", None), ("root", "admin", None)):
        users.add(login, "a long password", role, agent=agent, interface="PJSIP/1" if agent else None)

    class Bus:
        def submit(self, payload):
            pass

    app = create_app(
        users, Bus(), Directory(("support",), ("lunch",), ("resolved",), timezone="America/Sao_Paulo"), secret_key="k", library=library
    )
    app.config["WTF_CSRF_ENABLED"] = False

    def client(login):
        c = app.test_client()
        c.post("/login", data={"login": login, "password": "a long password"})
        return c

    local = NOW.astimezone(ZoneInfo("America/Sao_Paulo")).strftime("%Y-%m-%d %H:%M")
    assert f"{local} · 5511977776666" in client("sue").get("/recordings").get_data(as_text=True), "in the center's time zone"
    url = f"/recordings/{row.id}/audio"
    assert client("bruno").get(url).status_code == 403, "another agent's call"
    assert app.test_client().get(url).status_code == 302, "not logged in"
    sue = client("sue")
    whole = sue.get(url)
    assert whole.status_code == 200 and whole.data == wav.read_bytes()
    part = sue.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.data == wav.read_bytes()[:100]
    assert client("ana").get(url + "?download=1").headers["Content-Disposition"].startswith("attachment")
    assert b"bruno" in client("root").get("/admin/recordings/access").data
    assert client("sue").get("/admin/recordings/access").status_code == 403
    for absurd in ("9223372036854775808", "2147483648", "0"):  # past SQLite's and PostgreSQL's integers: once a 500, unlogged
        assert sue.get(f"/recordings/{absurd}/audio").status_code == 403
    with library.sessions() as s:
        log = [(a.login, a.action, a.detail) for a in s.scalars(select(RecordingAccess).order_by(RecordingAccess.id))]
    assert log == [
        ("bruno", "denied", "play"),
        ("sue", "play", None),  # the whole file, then a range of it: one play
        ("ana", "download", None),
        ("sue", "denied", "play: no recording 9223372036854775808"),
        ("sue", "denied", "play: no recording 2147483648"),
        ("sue", "denied", "play: no recording 0"),
    ]


def test_purge_with_holds_dry_run_and_erasure_from_the_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update(CALLCENTER_DATABASE_URL=f"sqlite:///{tmp_path}/p.db")
    engine = make_engine(env["CALLCENTER_DATABASE_URL"])
    migrate(engine)
    s = config.RecordingSettings()
    library = Library(sessionmaker(engine, expire_on_commit=False), open_vault(s, tmp_path / "var" / "vault"), s)
    old = (datetime.now(UTC) - timedelta(days=400)).timestamp()
    ids = []
    for n, number in enumerate(["551100", "551100", "551199"]):
        key = f"old/{n}.wav"
        library.vault.put(key, b"RIFF")
        ids.append(
            library.add(linkedid=f"x.{n}", queue="support", agent="ana", caller_number=number, status="stored", started=old, key=key)
        )
    library.hold(ids[1], True)
    run = lambda *args: subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "recordings", *args], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    dry = run("purge", "--dry-run")
    assert dry.returncode == 0 and "would delete recording 1 " in dry.stdout and "kept recording 2: legal hold" in dry.stdout
    assert (tmp_path / "var" / "vault" / "old" / "0.wav").exists(), "a dry run deletes nothing"
    done = run("purge", "--customer", "551199")
    assert "deleted recording 3 " in done.stdout and "recording 1" not in done.stdout
    run("purge")
    assert not (tmp_path / "var" / "vault" / "old" / "0.wav").exists() and (tmp_path / "var" / "vault" / "old" / "1.wav").exists()
    with library.sessions() as session:
        assert [r.deleted_at is None for r in session.scalars(select(Recording).order_by(Recording.id))] == [False, True, False]
    with pytest.raises(Refused):
        library.hold(99, True)


def test_s3_compatible_storage_keeps_recordings_encrypted(tmp_path, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
            monkeypatch.setenv(name, value)
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="calls")
        s = config.RecordingSettings(storage="s3", s3_bucket="calls", s3_endpoint=endpoint, encrypt=True, key=KEY)
        vault = open_vault(s, tmp_path / "unused")
        vault.put("2026/11/23/support/1.wav", b"RIFF call audio")
        raw = boto3.client("s3", endpoint_url=endpoint).get_object(Bucket="calls", Key="recordings/2026/11/23/support/1.wav")["Body"].read()
        assert raw.startswith(MAGIC) and b"call audio" not in raw, "the bucket holds only ciphertext"
        assert vault.get("2026/11/23/support/1.wav") == b"RIFF call audio"
        vault.delete("2026/11/23/support/1.wav")
        with pytest.raises(VaultError, match="missing from s3://calls/recordings/"):
            vault.get("2026/11/23/support/1.wav")
    finally:
        server.stop()


@pytest.mark.parametrize("absurd", [9223372036854775808, 2**31, 0, -1])
def test_a_hold_or_a_list_past_what_the_ids_column_holds_is_refused_not_a_traceback(library, absurd):
    """Once an OverflowError out of SQLite, and `list --limit -1` showed rows anyway."""
    admin = Who(0, "cli", "admin", "en", None, None, None, ())
    with pytest.raises(Refused, match=f"^no recording {absurd}$"):
        library.hold(absurd, True)
    with pytest.raises(Refused, match=f"^limit {absurd}: from 1 to 2147483647$"):
        library.visible(admin, limit=absurd)


def test_erasure_finds_a_customer_however_their_number_is_written(library):
    old = NOW - timedelta(days=400)
    rows = [
        Kept(1, "support", "5511999990001", old, False),
        Kept(2, "support", None, old, False),
        Kept(3, "support", "anonymous", old, False),
    ]
    delete, _ = to_purge(rows, config.RecordingSettings(), NOW, customer="+55 (11) 99999-0001")
    assert [r.id for r in delete] == [1]
    library.add(linkedid="x.1", queue="support", agent="ana", caller_number="anonymous", status="stored", started=old.timestamp())
    with pytest.raises(Refused, match="customer 'anonymous': no digits in the number"):  # else every caller with no number
        library.purge(NOW, dry_run=True, customer="anonymous")
