"""IVR flows: loading and its errors, the validators, and the pure state machine (including the recorded AsyncAGI call)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import wave
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest

from acd.native import acd_prompt
from ivr import prompts
from ivr.draw import to_dot, to_text
from ivr.flow import load_flow
from ivr.machine import Action, Agi, Ended, Machine, Record, Result, Sensitive, Started, State, parse_result
from ivr.validators import cnpj_ok, cpf_ok, luhn_ok, mask
from kernel.exceptions import ConfigError, InputError
from pbx.agi import GUARD_OFF
from pbx.codec import Message
from pbx.trace import actions_sent, replay_messages
from tests.conftest import TRACES

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "contrib" / "ivr" / "main.yaml"
SP = ZoneInfo("America/Sao_Paulo")


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SP).timestamp()


class Call:
    """Drives one call through a machine, answering AGI commands as Asterisk would."""

    def __init__(self, flow, when: str = "2026-11-23T10:00"):
        self.machine = Machine(flow)
        self.now = at(when)
        self.state, self.out = self.machine.step(State(), Started("PJSIP/trunk-1", "5511999990001", self.now))

    def agi(self) -> list[str]:
        return [c.command for c in self.out if isinstance(c, Agi)]

    def answer(self, text: str, seconds: float = 1.0) -> Call:
        self.now += seconds
        code, value, extra = parse_result(text)
        self.state, self.out = self.machine.step(self.state, Result(code, value, extra, self.now))
        return self

    def records(self, kind: str) -> list[dict]:
        return [c.data for c in self.out if isinstance(c, Record) and c.kind == kind]


def test_documented_flow_loads():
    flow = load_flow(MAIN)
    assert flow.start == "hours" and flow.languages == ("pt-BR", "en") and flow.matches("08007770000", None)


@pytest.mark.parametrize(
    "change, message",
    [
        (("next: main", "next: mian"), "flow.yaml:{line}: node 'language': next goes to unknown node 'mian'"),
        (('"2": sales', '"2": salez'), "node 'main': option 2 goes to unknown node 'salez'"),
        (('"9": callback', '"9x": callback'), "node 'main': '9x' is not a key a phone can send (0-9, * and #)"),
        (("    prompt: {pt-BR: cc/main-menu-pt, en: cc/main-menu-en}\n", ""), "node 'main': missing 'prompt' (the prompt to play)"),
        (
            ("prompt: {pt-BR: cc/enter-cpf-pt, en: cc/enter-cpf-en}", "prompt: {pt-BR: cc/enter-cpf-pt}"),
            "node 'account': 'prompt' has no prompt for en",
        ),
        (("validate: cpf", "validate: cpf2"), "node 'account': validate must be one of length, regex, cpf, cnpj, luhn"),
        (('repeat_key: "*"', 'repeat_key: "1"'), "node 'main': repeat_key '1' must be one phone key that no option starts with"),
        (('mon-fri: "08:00-20:00"', 'mon-fri: "20:00-08:00"'), "node 'hours': '20:00-08:00' is not a time span within a day"),
        (("kind: callback", "kind: callbak"), "node 'callback': unknown kind 'callbak'"),
        (('terminator: "#"', 'terminator: "*"'), "node 'account': terminator must be '#' (Asterisk's GET DATA ends input on '#' only)"),
        (('"1": support', '"1": 5'), "node 'main': option 1 goes to 5: a target is one node's name"),
        (('"1": support', '"1": [support, sales]'), "node 'main': option 1 goes to ['support', 'sales']: a target is one node's name"),
        (('dnid: ["08007770000", "1130000000"]', "dnid: 8007770000"), "entry dnid 8007770000 must be text in quotes"),
        (("timeout: 5", "timeout: -5"), "node 'main': 'timeout' must be from 0.5 to 300 seconds, not -5"),
        (("retries: 3", "retries: -1"), "node 'main': 'retries' must be from 0 to 10, not -1"),
    ],
)
def test_malformed_flows_are_rejected_with_file_line_and_node(tmp_path, change, message):
    text = MAIN.read_text().replace(*change)
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_flow(path)
    line = (
        next(i for i, line in enumerate(text.splitlines(), 1) if change[1] and change[1].strip() and change[1].strip() in line)
        if change[1]
        else 0
    )
    assert message.format(line=line) in str(info.value)
    assert str(path) in str(info.value)


SMALL = """\
flow: t
languages: [en]
start: m
nodes:
  m:
    kind: menu
    prompt: cc/menu
    options:
      "1": q
    timeout: 5
    retries: 3
    on_fail: h
  q: {kind: queue, queue: support}
  h: {kind: hangup}
"""


def small(*changes: tuple[str, str], add: str = "") -> str:
    """SMALL with each (old, new) made and `add` appended (line 15 on)."""
    text = SMALL
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    return text + add


def with_node(spec: str) -> str:
    """SMALL whose option 1 goes to a node `x` (line 15) that goes on to q."""
    return small(('"1": q', '"1": x'), add=f"  x: {spec}\n")


# Measured before (a bad-input sweep): 1-4 were tracebacks, 9 and 10 said "not valid YAML" at line 1, the rest passed the check
# and failed or misbehaved at call time (a newline in a prompt reached the AGI command sent over AMI).
@pytest.mark.parametrize(
    "text, message",
    [
        pytest.param(
            small(('options:\n      "1": q', "options: [q]")), "flow.yaml:8: node 'm': 'options' must be a mapping", id="1-options-list"
        ),
        pytest.param(small(("kind: hangup", "kind: [hangup]")), "flow.yaml:14: node 'h': unknown kind ['hangup']", id="2-kind-list"),
        pytest.param(small(add="holidays: [2026-13-45]\n"), "flow.yaml:15: holiday '2026-13-45' is not a date (YYYY-MM-DD)", id="3-date"),
        pytest.param(small(add="holidays: 2026-12-25\n"), "flow.yaml:15: 'holidays' must be a list", id="4-holidays-one-date"),
        pytest.param(small(("prompt: cc/menu", "prompt:")), "flow.yaml:7: node 'm': 'prompt' is empty", id="9-prompt-empty"),
        pytest.param(small(('"1": q', '"1":')), "flow.yaml:9: node 'm': 'options.1' is empty", id="9-target-empty"),
        pytest.param(small(("  h: {kind: hangup}", "  h:")), "flow.yaml:14: node 'h' is empty", id="9-node-empty"),
        pytest.param(SMALL[: SMALL.index("nodes:")] + "nodes:\n", "flow.yaml:4: 'nodes' is empty", id="9-nodes-empty"),
        pytest.param(
            small(("h: {kind: hangup}", "h: {<<: {kind: hangup}}")),
            "flow.yaml:14: node 'h': merge keys (<<) are not supported: write the keys out",
            id="10-merge-key",
        ),
        pytest.param(
            small(("timeout: 5", "timeout: true")), "flow.yaml:10: node 'm': 'timeout' must be a whole number or a number", id="11-bool"
        ),
        pytest.param(small(("retries: 3", "retries: false")), "flow.yaml:11: node 'm': 'retries' must be a whole number", id="11-bool-int"),
        pytest.param(
            small(("timeout: 5", "timeout: .inf")),
            "flow.yaml:10: node 'm': 'timeout' must be from 0.5 to 300 seconds, not inf",
            id="11-inf",
        ),
        pytest.param(
            small(("timeout: 5", "timeout: .nan")),
            "flow.yaml:10: node 'm': 'timeout' must be from 0.5 to 300 seconds, not nan",
            id="11-nan",
        ),
        pytest.param(
            small(("timeout: 5", "timeout: 0.001")),
            "flow.yaml:10: node 'm': 'timeout' must be from 0.5 to 300 seconds, not 0.001",
            id="12-tiny",
        ),
        pytest.param(
            small(("timeout: 5", "timeout: 1.0e+26")),
            "flow.yaml:10: node 'm': 'timeout' must be from 0.5 to 300 seconds, not 1e+26",
            id="12-huge",
        ),
        pytest.param(
            small(("timeout: 5", "timeout: 0")), "flow.yaml:10: node 'm': 'timeout' must be from 0.5 to 300 seconds, not 0", id="12-zero"
        ),
        pytest.param(
            small(("retries: 3", "retries: " + "9" * 23)),
            f"flow.yaml:11: node 'm': 'retries' must be from 0 to 10, not {'9' * 23}",
            id="12-retries",
        ),
        pytest.param(
            with_node("{kind: collect, prompt: cc/x, max_digits: 100000000, store_as: x, next: q, on_fail: h}"),
            "flow.yaml:15: node 'x': 'max_digits' must be from 1 to 64, not 100000000",
            id="12-max-digits",
        ),
        pytest.param(
            small(("queue: support}", "queue: support, priority: 11}")),
            "flow.yaml:13: node 'q': 'priority' must be from 0 to 10, not 11",
            id="12-priority",
        ),
        pytest.param(
            small(('"1": q', '"*1": q'), ("on_fail: h", 'on_fail: h\n    repeat_key: "*"')),
            "flow.yaml:13: node 'm': repeat_key '*' must be one phone key that no option starts with",
            id="13-repeat-key-starts-an-option",
        ),
        pytest.param(
            small(("on_fail: h", 'on_fail: h\n    repeat_key: "**"')),
            "flow.yaml:13: node 'm': repeat_key '**' must be one phone key",
            id="13-repeat-two-keys",
        ),
        *(
            pytest.param(
                small(("queue: support", f"queue: {name}")),
                f"flow.yaml:13: node 'q': 'queue' {shown} is not a queue name",
                id=f"15-queue-{shown}",
            )
            for name, shown in [("'sup,port'", "'sup,port'"), ("'sup port'", "'sup port'"), ("'sup|port'", "'sup|port'"), ('""', "''")]
        ),
        pytest.param(
            small(("queue: support", 'queue: "sup\\nport"')),
            "flow.yaml:13: node 'q': 'queue': 'sup\\nport' has a control character ('\\n')",
            id="15-queue-newline",
        ),
        *(
            pytest.param(
                small(("prompt: cc/menu", f"prompt: {name}")),
                f"flow.yaml:7: node 'm': 'prompt' '{name}' is not a sound name",
                id=f"16-prompt-{name}",
            )
            for name in ["../../etc/passwd", "/etc/passwd", "cc/menu.wav", "cc/../menu"]
        ),
        pytest.param(
            small(("prompt: cc/menu", 'prompt: "cc/x\\nEXEC Dial"')),
            "flow.yaml:7: node 'm': 'prompt': 'cc/x\\nEXEC Dial' has a control character",
            id="16-prompt-newline",
        ),
        pytest.param(
            small(("queue: support}", 'queue: support, music: "default\\nAction: Originate"}')),
            "flow.yaml:13: node 'q': 'music': 'default\\nAction",
            id="16-music",
        ),
        pytest.param(
            small(("queue: support}", "queue: support, context: 'a,b|c'}")),
            "flow.yaml:13: node 'q': 'context' 'a,b|c' is not a dialplan context",
            id="16-context",
        ),
        pytest.param(
            small(("queue: support}", "queue: support, exten: 's,1,Hangup'}")),
            "flow.yaml:13: node 'q': 'exten' 's,1,Hangup' is not an extension",
            id="16-exten",
        ),
        pytest.param(
            with_node("{kind: collect, prompt: cc/x, max_digits: 4, store_as: 'a b', next: q, on_fail: h}"),
            "flow.yaml:15: node 'x': 'store_as' 'a b' is not a variable name",
            id="16-store-as",
        ),
        pytest.param(
            with_node("{kind: set, values: {'A=B': x}, next: q}"),
            "flow.yaml:15: node 'x': 'values': 'A=B' is not a variable name",
            id="16-set-key",
        ),
        pytest.param(
            with_node("{kind: set, values: {A: [1, 2]}, next: q}"),
            "flow.yaml:15: node 'x': 'values': A must be text",
            id="16-set-value-list",
        ),
        pytest.param(
            with_node("""{kind: set, values: {A: 'say "hi"'}, next: q}"""),
            "flow.yaml:15: node 'x': 'values': A must be text (without",
            id="16-set-quote",
        ),
        pytest.param(with_node("{kind: set, values: {}, next: q}"), "flow.yaml:15: node 'x': 'values' is empty", id="16-set-nothing"),
        pytest.param(
            with_node("{kind: voicemail, mailbox: '100,u'}"), "flow.yaml:15: node 'x': 'mailbox' '100,u' is not a mailbox", id="16-mailbox"
        ),
        pytest.param(
            small(("languages: [en]", "languages: [xx-YY, klingon]")),
            "flow.yaml:2: unknown language 'xx-YY' (one of pt-br, pt, en, en-us",
            id="17-unknown",
        ),
        pytest.param(small(("languages: [en]", "languages: []")), "flow.yaml:2: 'languages' is empty", id="17-none"),
        pytest.param(
            small(("queue: support}", "queue: support, skills: [{a: 1}, null]}")),
            "flow.yaml:13: node 'q': skill {'a': 1} is not a skill name",
            id="18-skill",
        ),
        pytest.param(
            small(("queue: support}", "queue: support, skills: [{a: 1}, null]}")),
            "flow.yaml:13: node 'q': skill None is not a skill name",
            id="18-skill-null",
        ),
        pytest.param(
            small(("prompt: cc/menu", "prompt: {en: cc/x, de: 5}")),
            "flow.yaml:7: node 'm': 'prompt' has a prompt for de, not one of the languages ['en']",
            id="18-prompt-language",
        ),
        pytest.param(
            small(("prompt: cc/menu", "prompt: {en: cc/x, de: 5}")),
            "flow.yaml:7: node 'm': 'prompt' 5 is not a sound name",
            id="18-prompt-number",
        ),
        pytest.param(
            small(("prompt: cc/menu", "prompt: {en: [cc/x]}")),
            "flow.yaml:7: node 'm': 'prompt' ['cc/x'] is not a sound name",
            id="18-prompt-list",
        ),
    ],
)
def test_nonsense_values_are_refused_at_load_with_line_and_node(tmp_path, text, message):
    with pytest.raises(InputError) as info:
        load_flow(write(tmp_path, text))
    assert message in str(info.value)


def test_keys_are_kept_as_written(tmp_path):
    """Measured before: YAML made the key 01 the number 1, so the caller had to press 1, not 0 then 1."""
    flow = load_flow(write(tmp_path, small(('"1": q', "01: q"))))
    assert flow.nodes["m"].spec["options"] == {"01": "q"}
    assert Call(flow).answer("200 result=0").answer("200 result=49").records("done")[0]["queue"] == "support"


def test_a_flow_of_thousands_of_nodes_is_checked_and_drawn(tmp_path):
    """Measured before: 26,001 nodes were "more than 100,000 values", 20,001 took 218 s to check, 1,101 in a chain a RecursionError to draw."""

    def chain(n: int, last: str) -> str:
        nodes = "".join(f"  n{i}: {{kind: play, prompt: cc/p, next: n{i + 1}}}\n" for i in range(n))
        return f"flow: t\nlanguages: [en]\nstart: n0\nnodes:\n{nodes}  n{n}: {last}\n"

    assert len(load_flow(write(tmp_path, chain(26_000, "{kind: hangup}"))).nodes) == 26_001
    with pytest.raises(InputError) as info:
        load_flow(write(tmp_path, chain(26_000, "{kind: play, prompt: cc/p, next: n0}")))
    assert str(info.value).count("loop with no exit") == 26_001
    tree = to_text(load_flow(write(tmp_path, chain(1_100, "{kind: hangup}"))))
    assert tree.count("\n") == 1_102 and tree.endswith(" " * 4_402 + "next -> n1100 (hangup)\n")


def test_dot_quotes_names_that_hold_quotes_and_backslashes(tmp_path):
    """Measured before: a node named h"] ; evil [x=" ended its DOT string and became DOT statements of its own."""
    odd = 'h"] ; evil [x="\\'
    dot = to_dot(
        load_flow(write(tmp_path, small(("on_fail: h", f"on_fail: '{odd}'"), ("  h: {kind: hangup}", f"  '{odd}': {{kind: hangup}}"))))
    )
    string = r'"(?:[^"\\]|\\.)*"'
    assert '"h\\"] ; evil [x=\\"\\\\"' in re.findall(string, dot)
    assert re.sub(string, "S", dot).splitlines() == [
        "digraph S {",
        "  rankdir=LR;",
        "  node [shape=box];",
        "  S [label=S];",
        "  S [label=S, style=rounded];",
        "  S [label=S, style=rounded];",
        "  S -> S [label=S];",
        "  S -> S [label=S];",
        "}",
    ]


def test_unreachable_nodes_and_loops_without_exit(tmp_path):
    path = write(
        tmp_path,
        """\
        flow: loops
        start: a
        nodes:
          a: {kind: play, prompt: p, next: b}
          b: {kind: play, prompt: p, next: a}
          lost: {kind: hangup}
        """,
    )
    with pytest.raises(InputError) as info:
        load_flow(path)
    text = str(info.value)
    assert "flow.yaml:6: node 'lost': never reached from start 'a'" in text
    assert "flow.yaml:4: node 'a': loop with no exit" in text and "flow.yaml:5: node 'b': loop with no exit" in text


def test_files_that_are_no_flow_at_all_are_refused_quickly_not_crashing(tmp_path):
    """Measured before: a non-UTF-8 file, 5,000-deep YAML and an alias bomb (still running after 40 s) were tracebacks."""
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"flow: x\n# Op\xe7\xe3o\n")
    with pytest.raises(InputError, match=r"latin.yaml:2: not UTF-8 \(byte 0xe7\)"):
        load_flow(latin)
    with pytest.raises(InputError, match="nested too deep to be a flow|exceeded maximum nesting depth"):  # Python's YAML, libyaml
        load_flow(write(tmp_path, "flow: x\nnodes: " + "[" * 5000 + "]" * 5000 + "\n"))
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    with pytest.raises(InputError, match=r"more than 1,000,000 values \(each copy an alias makes counts\): too big for a flow"):
        load_flow(write(tmp_path, "\n".join(bomb) + "\nflow: x\n"))


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"flow.yaml:3: not valid YAML: (did not find )?expected .,. or .\]."):  # libyaml, Python's
        load_flow(write(tmp_path, "flow: x\nnodes: [unclosed\n"))
    with pytest.raises(InputError, match="cannot read"):
        load_flow(tmp_path / "nope.yaml")


def test_validators():
    assert cpf_ok("52998224725") and not cpf_ok("52998224724") and not cpf_ok("11111111111")
    assert cnpj_ok("11222333000181") and not cnpj_ok("11222333000182")
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert mask("52998224725") == "*********25"


def test_business_hours_language_menu_and_queue():
    flow = load_flow(MAIN)
    call = Call(flow, "2026-11-23T10:00")
    assert call.agi() == ["GET DATA cc/choose-language-pt 5000 1"], "the prompt and the wait for a key in one command"
    assert call.answer("200 result=2").records("language") == [{"language": "en"}]
    assert call.agi() == ["GET DATA cc/main-menu-en 5000 1"]
    call.answer("200 result=1")
    assert call.agi() == [GUARD_OFF, "SET CONTEXT callcenter-queues", "SET EXTENSION support", "SET PRIORITY 1", "ASYNCAGI BREAK"]
    [done] = call.records("done")
    assert done["outcome"] == "queue" and done["queue"] == "support" and done["language"] == "en"
    assert [p["node"] for p in done["path"]] == ["hours", "language", "main", "support"]


@pytest.mark.parametrize(
    "when, expected",
    [("2026-11-23T21:00", "closed"), ("2026-11-22T10:00", "closed"), ("2026-12-25T10:00", "closed"), ("2026-11-28T10:00", "language")],
)
def test_business_hours_with_an_injected_clock(when, expected):
    call = Call(load_flow(MAIN), when)
    assert call.state.node == expected


def test_invalid_timeout_retries_then_operator():
    call = Call(load_flow(MAIN))
    call.answer("200 result=1")
    call.answer("200 result=7")
    assert call.records("retry") == [{"node": "main", "why": "invalid", "attempt": 1}]
    assert call.agi() == ["GET DATA cc/invalid-pt 1 1"], "a notice asks for nothing: a key only cuts it short"
    call.answer("200 result= (timeout)").answer("200 result= (timeout)")
    assert call.records("retry") == [{"node": "main", "why": "timeout", "attempt": 2}]
    assert call.agi() == ["GET DATA cc/no-input-pt 1 1"]
    for _ in range(4):
        call.answer("200 result= (timeout)")
    [done] = call.records("done")
    assert done["queue"] == "support" and done["priority"] == 5, "after three failed tries the caller goes to the operator"


def test_repeat_key_replays_the_menu():
    call = Call(load_flow(MAIN))
    call.answer("200 result=1")
    assert call.answer("200 result=*").agi() == ["GET DATA cc/main-menu-pt 5000 1"]


def test_cpf_is_validated_masked_and_recording_paused():
    call = Call(load_flow(MAIN))
    call.answer("200 result=1").answer("200 result=3")
    assert any(isinstance(c, Action) and dict(c.fields)["State"] == "1" for c in call.out)
    assert [c.on for c in call.out if isinstance(c, Sensitive)] == [True], "the tracker is told before the caller keys it"
    assert call.agi() == ["GET DATA cc/enter-cpf-pt 10000 11"]
    call.answer("200 result=12345678900")
    assert call.records("input") == [{"node": "account", "valid": False, "value": "*********00"}]
    call.answer("200 result= (timeout)").answer("200 result=52998224725")
    [stored] = call.records("input")
    assert stored == {"node": "account", "name": "cpf", "valid": True, "value": "*********25", "sensitive": True}
    assert [dict(c.fields)["State"] for c in call.out if isinstance(c, Action)] == ["0"]
    assert [c.on for c in call.out if isinstance(c, Sensitive)] == [False]
    assert call.agi() == ['SET VARIABLE customer_tier "standard"']
    call.answer("200 result=1")
    [done] = call.records("done")
    assert done["inputs"] == {"cpf": "*********25"} and done["attached"]["cpf"] == "52998224725"
    assert call.agi()[:2] == ["SET VARIABLE QUEUE_PRIO 2", 'SET VARIABLE IVR_SKILLS "billing"']


def test_hangup_mid_menu_ends_with_the_path_so_far():
    call = Call(load_flow(MAIN))
    call.answer("200 result=1")
    call.state, call.out = call.machine.step(call.state, Ended(call.now + 3))
    [done] = call.records("done")
    assert done["outcome"] == "caller_hung_up" and [p["node"] for p in done["path"]] == ["hours", "language", "main"]
    assert call.machine.step(call.state, Result(200, "49", "", call.now + 4)) == (call.state, [])


def test_the_recorded_asyncagi_call_gets_the_same_commands(tmp_path):
    flow = load_flow(
        write(
            tmp_path,
            """\
        flow: recorded
        start: menu
        nodes:
          menu: {kind: menu, prompt: ~, timeout: 5, options: {"1": support}, on_fail: bye}
          support: {kind: queue, queue: support, exten: queue-support}
          bye: {kind: hangup}
        """,
        )
    )
    recorded = [a["Command"] for a in actions_sent(TRACES / "async_agi_ivr.jsonl") if a.action == "AGI"]
    events = [m for _, m in replay_messages(TRACES / "async_agi_ivr.jsonl") if isinstance(m, Message) and m.event]
    start = next(m for m in events if m.event == "AsyncAGIStart")
    machine = Machine(flow)
    state, out = machine.step(State(), Started(start["Channel"], start["CallerIDNum"], 0.0))
    sent = [c.command for c in out if isinstance(c, Agi)]
    for reply in (m for m in events if m.event == "AsyncAGIExec"):
        state, out = machine.step(state, Result(*parse_result(unquote(reply["Result"])), 1.0))
        sent += [c.command for c in out if isinstance(c, Agi)]
    assert recorded == ["WAIT FOR DIGIT 5000", "SET EXTENSION queue-support", "SET PRIORITY 1", "ASYNCAGI BREAK"]
    assert sent == [recorded[0], GUARD_OFF, *recorded[1:]], "the same, and the guard (newer than the recording) cleared first"


def test_ivr_check_and_draw_commands(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "callcenter.cli", "ivr", *a], capture_output=True, text=True)  # noqa: E731
    ok = run("check", str(MAIN))
    assert ok.returncode == 0 and "12 nodes" in ok.stdout
    bad = run("check", str(write(tmp_path, "flow: x\nstart: a\nnodes:\n  a: {kind: play, prompt: p, next: zz}\n")))
    assert bad.returncode == 1 and "flow.yaml:4: node 'a': next goes to unknown node 'zz'" in bad.stderr
    tree = run("draw", str(MAIN)).stdout
    assert "main (menu)" in tree and "1 -> support (queue support)" in tree
    dot = run("draw", "--dot", str(MAIN)).stdout
    assert dot.startswith("digraph") and '"main" -> "support" [label="1"]' in dot


def test_play_collect_regex_multi_digit_menu_voicemail_and_callback(tmp_path):
    flow = load_flow(
        write(
            tmp_path,
            """\
        flow: kinds
        languages: [en]
        start: hello
        nodes:
          hello: {kind: play, prompt: hello, next: card}
          card: {kind: collect, prompt: card, max_digits: 16, min_digits: 16, validate: luhn, store_as: card, sensitive: true,
                 next: code, on_fail: bye}
          code: {kind: collect, prompt: code, max_digits: 4, validate: regex, regex: "[0-9]{2}42", store_as: code, next: menu, on_fail: bye}
          menu: {kind: menu, prompt: menu, options: {"1": vm, "12": cb}, on_fail: bye}
          vm: {kind: voicemail, mailbox: "100@default"}
          cb: {kind: callback, queue: support, prompt: callback-ok}
          bye: {kind: hangup, prompt: bye}
        """,
        )
    )
    call = Call(flow)
    assert call.agi() == ["GET DATA hello 1 1"]
    assert call.answer("200 result= (timeout)").agi() == ["GET DATA card 5000 16"]
    assert call.answer("200 result=4111111111111111").agi() == ["GET DATA code 5000 4"]
    assert call.answer("200 result=1342").agi() == ["GET DATA menu 5000 1"]
    assert call.answer("200 result=1").agi() == ["WAIT FOR DIGIT 3000"], "1 could still become 12"
    call.answer("200 result=50")
    assert call.agi() == ["GET DATA callback-ok 1 1"] and not call.records("done"), "the message first"
    call.answer("200 result= (timeout)")
    assert call.agi() == ["SET VARIABLE CALLCENTER_CALLBACK_REQUEST support", "HANGUP"], "marked for the call back, then hung up"
    [done] = call.records("done")
    assert done["outcome"] == "callback" and done["inputs"] == {"card": "**************11", "code": "1342"}

    call = Call(flow)
    call.answer("200 result=").answer("200 result=4111111111111111").answer("200 result=1342").answer("200 result=1")
    call.answer("200 result=0")
    assert call.agi() == ["EXEC VoiceMail 100@default,u", "HANGUP"], "after the digit timeout, 1 alone is the choice"


def test_language_menu_falls_back_to_the_default_language():
    call = Call(load_flow(MAIN))
    for _ in range(4):
        call.answer("200 result= (timeout)")
    assert call.state.language == "pt-BR" and call.state.node == "main"


def test_agi_error_and_hangup_results_end_the_call():
    call = Call(load_flow(MAIN)).answer("510 Invalid or unknown command")
    assert call.state.done == "agi_error" and call.records("error")[0]["code"] == 510
    call = Call(load_flow(MAIN)).answer("200 result=1").answer("200 result=-1")
    assert call.agi() == ["WAIT FOR DIGIT 5000"] and call.state.done is None, "GET DATA's -1: a missing prompt, or a hang-up"
    call.answer("200 result=-1")
    assert call.state.done == "caller_hung_up", "WAIT FOR DIGIT's -1 is a hang-up (it plays nothing)"


def missing(call: Call) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "at"} for r in call.records("missing_prompt")]


def test_a_missing_menu_prompt_is_not_a_hang_up_the_menu_still_routes():
    # Asterisk answers GET DATA of a file it does not have `200 result=-1`, and AsyncAGI goes on.
    call = Call(load_flow(MAIN)).answer("200 result=1")
    assert call.agi() == ["GET DATA cc/main-menu-pt 5000 1"]
    call.answer("200 result=-1")
    assert call.agi() == ["WAIT FOR DIGIT 5000"], "as if the menu had played and no key was pressed"
    assert call.state.done is None and not missing(call), "not yet known: the caller may have hung up"
    call.answer("200 result=50")
    assert missing(call) == [{"node": "main", "prompt": "cc/main-menu-pt"}], "Asterisk answered: the caller is there"
    assert call.agi() == [GUARD_OFF, "SET CONTEXT callcenter-queues", "SET EXTENSION sales", "SET PRIORITY 1", "ASYNCAGI BREAK"]
    [done] = call.records("done")
    assert done["outcome"] == "queue" and done["queue"] == "sales"


def test_a_missing_menu_prompt_then_no_key_retries_with_the_notice():
    call = Call(load_flow(MAIN)).answer("200 result=1").answer("200 result=-1").answer("200 result=0")
    assert missing(call) == [{"node": "main", "prompt": "cc/main-menu-pt"}]
    assert call.records("retry") == [{"node": "main", "why": "timeout", "attempt": 1}]
    assert call.agi() == ["GET DATA cc/no-input-pt 1 1"]
    call.answer("200 result=-1")
    assert call.agi() == ["GET DATA cc/main-menu-pt 5000 1"], "a missing notice: the menu again"
    call.answer("200 result=-1")
    assert missing(call) == [{"node": "main", "prompt": "cc/no-input-pt"}]


def test_a_hang_up_during_a_prompt_still_ends_the_call_with_no_missing_prompt():
    # GET DATA answers a hang-up `200 result=-1` too; then AsyncAGIEnd and Hangup come, and no command runs any more.
    call = Call(load_flow(MAIN)).answer("200 result=1").answer("200 result=-1")
    call.state, call.out = call.machine.step(call.state, Ended(call.now + 1))
    [done] = call.records("done")
    assert done["outcome"] == "caller_hung_up" and not missing(call)
    assert call.machine.step(call.state, Result(0, "", "Channel does not exist.", call.now + 2)) == (call.state, []), (
        "the AMI's refusal of a command to a gone channel is no answer from it"
    )


def test_a_missing_cpf_prompt_still_reads_the_digits_with_the_recording_muted():
    call = Call(load_flow(MAIN)).answer("200 result=1").answer("200 result=3")
    assert call.agi() == ["GET DATA cc/enter-cpf-pt 10000 11"]
    call.answer("200 result=-1")
    assert call.agi() == ['GET DATA "" 10000 11'] and not [c for c in call.out if isinstance(c, Action)], "still muted"
    call.answer("200 result=52998224725")
    assert missing(call) == [{"node": "account", "prompt": "cc/enter-cpf-pt"}]
    assert call.records("input")[0]["valid"] and [dict(c.fields)["State"] for c in call.out if isinstance(c, Action)] == ["0"]


def test_a_missing_closing_message_still_hangs_up_and_is_told_by_the_hangup_answer():
    call = Call(load_flow(MAIN), "2026-11-23T22:00")
    assert call.agi() == ["GET DATA cc/closed-pt 1 1"]
    call.answer("200 result=-1")
    assert call.agi() == ["HANGUP"] and call.records("done")[0]["outcome"] == "hangup" and not missing(call)
    call.answer("200 result=1")
    assert missing(call) == [{"node": "closed", "prompt": "cc/closed-pt"}]

    call = Call(load_flow(MAIN), "2026-11-23T22:00")
    call.state, call.out = call.machine.step(call.state, Ended(call.now + 2))
    assert call.records("done")[0]["outcome"] == "hangup", "hanging up during the closing message is still the node's ending"


# The prompts: texts for every prompt, spoken into WAV files Asterisk plays ----------------------------------

PROMPTS = ROOT / "contrib" / "prompts" / "prompts.yaml"
speaks = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng or sox not installed (make test installs them with apt)"
)


def test_every_prompt_the_flows_and_the_native_acd_play_has_a_text():
    named = set()
    for path in sorted((ROOT / "contrib" / "ivr").glob("*.yaml")):
        for node in load_flow(path).nodes.values():
            for key in ("prompt", "invalid_prompt", "timeout_prompt"):
                value = node.spec.get(key)
                named |= set(value.values()) if isinstance(value, dict) else {value} if value else set()
    own = set(re.findall(r'acd_prompt\("([\w-]+)"', (ROOT / "acd" / "native.py").read_text()))
    named |= {acd_prompt(name, language) for name in own for language in ("pt-BR", "en")}
    texts = prompts.load(PROMPTS)
    assert "cc/main-menu-pt" in named and {"cc/your-position", "cc/your-position-en"} <= named
    assert named <= set(texts), f"no text for {sorted(named - set(texts))}"
    assert all(
        voice == ("pt-br" if name.endswith("-pt") else "en-us")
        for name in named
        if name[-3:] in ("-pt", "-en")
        for voice, _ in texts[name][:1]
    ), "-pt prompts start in Portuguese, -en ones in English"


@speaks
def test_prompts_are_8khz_mono_16bit_wav_made_once_and_recordings_are_never_overwritten(tmp_path):
    spec = tmp_path / "prompts.yaml"
    spec.write_text(
        'cc/hello: {lang: pt-BR, text: "Olá."}\ncc/both: [{lang: pt-BR, text: "Um."}, {lang: en, text: "Two."}]\n'
        'cc/bye: {lang: en, text: "Bye."}\n'
    )
    out = tmp_path / "sounds"
    assert sorted(p.name for p in prompts.build(spec, out)) == ["both.wav", "bye.wav", "hello.wav"]
    with wave.open(str(out / "cc" / "both.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getcomptype()) == (8000, 1, 2, "NONE")
        assert w.getnframes() > 8000 * 0.5
    assert (out / "cc" / "hello.wav").read_bytes()[20:22] == b"\x01\x00", "plain PCM (format 1), what format_wav reads"
    assert prompts.build(spec, out) == [], "a second run has nothing to do"

    recorded = (out / "cc" / "bye.wav").read_bytes()
    (out / "cc" / "hello.wav").write_bytes(recorded)  # a recording copied over ours
    (out / "cc" / "bye.gsm").write_bytes(b"\xd0" * 33)  # a recording in another format
    spec.write_text(spec.read_text().replace("Olá.", "Oi.").replace("Bye.", "Goodbye.").replace("Two.", "Two!"))
    edited = max(p.stat().st_mtime for p in (out / "cc").iterdir()) + 1
    os.utime(spec, (edited, edited))  # the text edited after every file was made, whatever the file system's time resolution
    assert [p.name for p in prompts.build(spec, out)] == ["both.wav"], "only our own file is remade when its text changes"
    assert (out / "cc" / "hello.wav").read_bytes() == recorded, "a file we did not write is never overwritten"
    assert not (out / "cc" / "bye.wav").exists(), "our WAV gives way to a recording in another format (Asterisk would pick ours)"
    assert (out / "cc" / "bye.gsm").exists()


def test_prompts_need_espeak_ng_and_sox_and_say_so(tmp_path, monkeypatch):
    spec = tmp_path / "prompts.yaml"
    spec.write_text('cc/hello: {lang: en, text: "Hello."}\n')
    monkeypatch.setattr(prompts.shutil, "which", lambda tool: None if tool == "sox" else f"/usr/bin/{tool}")
    with pytest.raises(prompts.ToolMissing, match=r"^sox not found.*apt-get install sox") as info:
        prompts.build(spec, tmp_path / "sounds")
    assert isinstance(info.value, ConfigError)
    spec.write_text('cc/hello: {lang: fr, text: "Bonjour."}\n')
    with pytest.raises(InputError, match=r"prompts.yaml: cc/hello: unknown lang 'fr'"):
        prompts.build(spec, tmp_path / "sounds")


def test_every_node_kind_is_entered_and_answered_by_the_machine():
    from ivr.flow import SCHEMA

    machine = Machine(load_flow(MAIN))
    entered_in_place = {"set", "business_hours"}
    assert set(SCHEMA) == set(machine._starts) | entered_in_place
    assert set(machine._answers) <= set(SCHEMA) - {"queue", "business_hours"}, "a queue node leaves AsyncAGI"
