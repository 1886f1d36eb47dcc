"""IVR flows: declared in YAML, checked on load, errors naming the file, the line and the node.

A flow is a graph of nodes; each node has a kind and names the nodes it can go
to. Checked: every key and type, every number within what a real IVR needs,
every name that reaches an AGI command or the dialplan (prompts, queues,
contexts, variables) in a form the command cannot misread, every reference,
prompts for every language, digit maps, nodes never reached from `start`, and
nodes from which no path ever ends the IVR (a loop with no exit). See
contrib/ivr/*.yaml for examples.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from yaml.constructor import SafeConstructor

from ivr.prompts import NAME as SOUND
from ivr.prompts import VOICES
from ivr.validators import CHECKS
from kernel.config import QUEUE_NAME
from kernel.exceptions import InputError

TERMINAL = {"queue", "voicemail", "callback", "hangup"}
KEY = re.compile(r"[0-9*#]")
DTMF = re.compile(r"[0-9*#]+")
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MERGE = "tag:yaml.org,2002:merge"
NAMES = "letters, digits, '_', '-' and '.'"
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,79}")
VARIABLE_RULE = "a variable name (letters, digits and '_', not starting with a digit)"
SOUND_RULE = "a sound name: letters, digits, '-' and '_' in folders like cc/main-menu-pt (no extension, no leading '/', no '..')"
# key -> what its text must match, and what that allows: each ends up in an AGI command (a ',' splits an application's
# arguments, a space a command's)
TEXT_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "queue": (QUEUE_NAME, f"a queue name ({NAMES})"),
    "context": (QUEUE_NAME, f"a dialplan context ({NAMES})"),
    "music": (QUEUE_NAME, f"a music on hold class ({NAMES})"),
    "exten": (re.compile(r"[A-Za-z0-9_.*#+-]{1,80}"), "an extension (letters, digits, '*', '#', '+', '_', '-' and '.')"),
    "mailbox": (re.compile(r"[A-Za-z0-9_.-]{1,80}(@[A-Za-z0-9_.-]{1,80})?"), f"a mailbox like 100@default ({NAMES})"),
    "store_as": (VARIABLE, VARIABLE_RULE),
}
# key -> (lowest, highest, unit): what a real IVR needs (the panel sets priorities from 0 to 10 too)
RANGES = {
    "timeout": (0.5, 300, " seconds"),
    "retries": (0, 10, ""),
    "max_digits": (1, 64, ""),
    "min_digits": (1, 64, ""),
    "priority": (0, 10, ""),
}

# kind -> {key: (required, type, is a node reference)}
SCHEMA: dict[str, dict[str, tuple[bool, type | tuple[type, ...], bool]]] = {
    "play": {"prompt": (True, (str, dict), False), "next": (True, str, True)},
    "menu": {
        "prompt": (True, (str, dict, type(None)), False),
        "options": (True, dict, False),
        "timeout": (False, (int, float), False),
        "retries": (False, int, False),
        "invalid_prompt": (False, (str, dict), False),
        "timeout_prompt": (False, (str, dict), False),
        "repeat_key": (False, str, False),
        "on_fail": (True, str, True),
    },
    "collect": {
        "prompt": (True, (str, dict), False),
        "max_digits": (True, int, False),
        "min_digits": (False, int, False),
        "terminator": (False, str, False),
        "timeout": (False, (int, float), False),
        "validate": (False, str, False),
        "regex": (False, str, False),
        "sensitive": (False, bool, False),
        "store_as": (True, str, False),
        "retries": (False, int, False),
        "invalid_prompt": (False, (str, dict), False),
        "next": (True, str, True),
        "on_fail": (True, str, True),
    },
    "business_hours": {"open": (True, dict, False), "then": (True, str, True), "else": (True, str, True), "holiday": (False, str, True)},
    "language": {
        "prompt": (True, (str, dict), False),
        "choices": (True, dict, False),
        "timeout": (False, (int, float), False),
        "next": (True, str, True),
    },
    "set": {"values": (True, dict, False), "next": (True, str, True)},
    "queue": {
        "queue": (True, str, False),
        "priority": (False, int, False),
        "skills": (False, list, False),
        "context": (False, str, False),
        "exten": (False, str, False),
        "mode": (False, str, False),
        "music": (False, str, False),
    },
    "voicemail": {"mailbox": (True, str, False), "prompt": (False, (str, dict), False)},
    "callback": {"queue": (True, str, False), "prompt": (True, (str, dict), False)},
    "hangup": {"prompt": (False, (str, dict), False)},
}
PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when PyYAML has it, reads a big flow six times faster
MAX_VALUES = 1_000_000  # a big flow has a few thousand nodes of a few values each
TOP = {
    "flow": (True, str),
    "start": (True, str),
    "nodes": (True, dict),
    "entry": (False, dict),
    "timezone": (False, str),
    "languages": (False, list),
    "default_language": (False, str),
    "holidays": (False, list),
}


@dataclass(frozen=True)
class Node:
    """One step of a flow."""

    id: str
    kind: str
    line: int
    spec: dict[str, Any]

    def edges(self) -> dict[str, str]:
        """Where this node can go: label -> node id."""
        out = {f"option {k}": v for k, v in self.spec.get("options", {}).items()}
        out.update({key: self.spec[key] for key, (_, _, ref) in SCHEMA[self.kind].items() if ref and key in self.spec})
        return out

    def prompt(self, key: str, language: str) -> str | None:
        """The prompt file for a language (a plain string serves every language)."""
        value = self.spec.get(key)
        return value.get(language) if isinstance(value, dict) else value


@dataclass(frozen=True)
class Flow:
    """A checked flow, ready to run."""

    name: str
    path: str
    start: str
    nodes: dict[str, Node]
    languages: tuple[str, ...] = ("pt-BR",)
    default_language: str = "pt-BR"
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("America/Sao_Paulo"))
    holidays: frozenset[date] = frozenset()
    entry: dict[str, Any] = field(default_factory=dict)

    def matches(self, dnid: str | None, context: str | None) -> bool:
        """Whether a call with this DNID or dialplan context is handled by this flow."""
        dnid_list = self.entry.get("dnid", [])
        dnids = [str(d) for d in (dnid_list if isinstance(dnid_list, list) else [dnid_list])]
        return (dnid is not None and dnid in dnids) or (context is not None and context == self.entry.get("context"))


Problem = Callable[[tuple[str, ...], str], None]


class _Loader:
    """YAML to plain data, remembering the line of every mapping key and the values it refused itself."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: dict[tuple[str, ...], int] = {}
        self.problems: list[str] = []
        self.refused: set[tuple[str, ...]] = set()
        self.values = 0
        self.scalars = SafeConstructor()

    def load(self, text: str) -> Any:
        try:
            root = yaml.compose(text, Loader=PARSER)
            return self._value(root, ()) if root is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{self.path}:{mark.line + 1}" if mark else self.path
            raise InputError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
        except RecursionError as exc:
            raise InputError(f"{self.path}: nested too deep to be a flow") from exc

    def _refuse(self, path: tuple[str, ...], line: int, text: str) -> None:
        self.refused.add(path)
        self.problems.append(f"{self.path}:{line}: {text}")

    def _text(self, text: str, path: tuple[str, ...], line: int) -> None:
        control = CONTROL.search(text)
        if control:
            self._refuse(path, line, f"{_name(path)}: {text!r} has a control character ({control.group()!r})")

    def _value(self, node: yaml.Node, path: tuple[str, ...]) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:  # aliases of aliases (a "billion laughs") would expand without end
            raise InputError(
                f"{self.path}:{node.start_mark.line + 1}: more than {MAX_VALUES:,} values (each copy an alias makes counts): too big for a flow"
            )
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if key_node.tag == MERGE:
                    self._refuse(path, line, f"{_name(path)}: merge keys (<<) are not supported: write the keys out")
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problems.append(f"{self.path}:{line}: {_name(path)}: a key must be text, not a list or a mapping")
                    continue
                key = key_node.value  # as written: YAML would make the key 01 the number 1
                self._text(key, path + (key,), line)
                if key in out:
                    self.problems.append(f"{self.path}:{line}: {_name(path + (key,))} appears twice")
                self.lines[path + (key,)] = line
                out[key] = self._value(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._value(item, path + (str(i),)) for i, item in enumerate(node.value)]
        if node.value == "" and not node.style:  # plain: None in Python's YAML, '' in libyaml's
            self._refuse(path, self.line(*path), f"{_name(path)} is empty")
            return None
        self._text(node.value, path, node.start_mark.line + 1)
        build = self.scalars.yaml_constructors.get(node.tag, self.scalars.yaml_constructors[None])
        try:
            return build(self.scalars, node)
        except ValueError:  # a date like 2026-13-45 stays text, for its key's check to name
            return node.value

    def line(self, *path: str) -> int:
        for size in range(len(path), 0, -1):
            if path[:size] in self.lines:
                return self.lines[path[:size]]
        return 1


def _name(path: tuple[str, ...]) -> str:
    """A place in a flow as messages name it: node 'main', node 'main': 'options.1', 'languages'."""
    if len(path) > 1 and path[0] == "nodes":
        return f"node '{path[1]}'" + (f": '{'.'.join(path[2:])}'" if len(path) > 2 else "")
    return f"'{'.'.join(path)}'" if path else "the flow"


def _is(value: object, kind: type | tuple[type, ...]) -> bool:
    """isinstance, where true and false are no numbers (in Python they are ints)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        str: "text",
        dict: "a mapping",
        list: "a list",
        int: "a whole number",
        float: "a number",
        bool: "true/false",
        type(None): "empty",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _typed(
    values: dict[str, Any],
    schema: Mapping[str, tuple[Any, ...]],
    where: tuple[str, ...],
    problem: Problem,
    prefix: str = "",
    unknown: str = "",
) -> dict[str, Any]:
    """The values of the type their schema says; unknown keys, values of another type and required keys missing are problems."""
    out = {}
    for key, value in values.items():
        if key not in schema:
            problem(where + (key,), f"{prefix}unknown key '{key}'{unknown}")
        elif _is(value, schema[key][1]):
            out[key] = value
        else:
            problem(where + (key,), f"{prefix}'{key}' must be {_type_name(schema[key][1])}")
    for key, (required, *_) in schema.items():
        if required and key not in values:
            problem(where, f"{prefix}missing '{key}'" + (" (the prompt to play)" if key == "prompt" else ""))
    return out


def load_flow(path: str | Path) -> Flow:
    """Read and check a flow file; every problem found is reported in one InputError."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raw = Path(path).read_bytes()
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 (byte 0x{raw[exc.start]:02x}): save the flow as UTF-8") from exc
    loader = _Loader(path)
    data = loader.load(text)
    problems = loader.problems
    if not isinstance(data, dict):
        raise InputError(f"{path}:1: a flow is a mapping with flow, start and nodes")

    def problem(line_path: tuple[str, ...], text: str) -> None:
        if not any(line_path[:size] in loader.refused for size in range(len(line_path) + 1)):
            problems.append(f"{path}:{loader.line(*line_path)}: {text}")

    data = _typed(data, TOP, (), problem)
    languages = tuple(data.get("languages", ["pt-BR"]))
    if not languages:
        problem(("languages",), "'languages' is empty: list the flow's languages (or leave it out for pt-BR alone)")
    for index, language in enumerate(languages):
        if not isinstance(language, str) or language.lower() not in VOICES:
            problem(("languages", str(index)), f"unknown language {language!r} (one of {', '.join(VOICES)}, in any case)")
    languages = tuple(str(x) for x in languages) or ("pt-BR",)
    default_language = str(data.get("default_language") or languages[0])
    if default_language not in languages:
        problem(("default_language",), f"default_language '{default_language}' is not one of the languages {list(languages)}")
    try:
        tz = ZoneInfo(str(data.get("timezone") or "America/Sao_Paulo"))
    except (ZoneInfoNotFoundError, ValueError):
        problem(("timezone",), f"unknown time zone '{data.get('timezone')}'")
        tz = ZoneInfo("UTC")
    holidays = set()
    for index, day in enumerate(data.get("holidays", [])):
        try:
            holidays.add(date.fromisoformat(str(day)))
        except ValueError:
            problem(("holidays", str(index)), f"holiday '{day}' is not a date (YYYY-MM-DD)")
    nodes: dict[str, Node] = {}
    for node_id, spec in data.get("nodes", {}).items():
        where = ("nodes", node_id)
        if not isinstance(spec, dict) or "kind" not in spec:
            problem(where, f"node '{node_id}': needs a 'kind' (one of {', '.join(SCHEMA)})")
            continue
        kind = spec["kind"]
        if not isinstance(kind, str) or kind not in SCHEMA:
            problem(where + ("kind",), f"node '{node_id}': unknown kind {kind!r} (one of {', '.join(SCHEMA)})")
            continue
        checked = _typed(spec, {"kind": (True, str), **SCHEMA[kind]}, where, problem, f"node '{node_id}': ", f" for a {kind} node")
        _check_node(node_id, kind, checked, languages, where, problem)
        nodes[node_id] = Node(node_id, kind, loader.line(*where), checked)
    start: str = data.get("start", "")
    if "start" in data and "nodes" in data and start not in nodes:
        problem(("start",), f"start node '{start}' is not defined")
    for node in nodes.values():
        for label, target in node.edges().items():
            key = ("options", label.split(" ", 1)[1]) if label.startswith("option ") else (label,)
            if not isinstance(target, str):
                problem(("nodes", node.id) + key, f"node '{node.id}': {label} goes to {target!r}: a target is one node's name")
            elif target not in nodes:
                problem(("nodes", node.id) + key, f"node '{node.id}': {label} goes to unknown node '{target}'")
    _check_entry(data.get("entry"), problem)
    if not problems:
        _check_graph(nodes, start, path, problems)
    if problems:
        raise InputError("invalid IVR flow:\n  " + "\n  ".join(problems))
    return Flow(str(data["flow"]), path, start, nodes, languages, default_language, tz, frozenset(holidays), dict(data.get("entry") or {}))


def _check_entry(entry: object, problem: Problem) -> None:
    """Where calls come in: dnid a number in quotes (or a list of them), context a name."""
    if not isinstance(entry, dict):
        return
    dnid = entry.get("dnid")
    dnids = dnid if isinstance(dnid, list) else [dnid] if dnid is not None else []
    for index, one in enumerate(dnids):
        if not isinstance(one, str):
            where = ("entry", "dnid", str(index)) if isinstance(dnid, list) else ("entry", "dnid")
            problem(where, f'entry dnid {one!r} must be text in quotes ("08007770000": a number loses its leading 0)')
    if "context" in entry and not isinstance(entry["context"], str):
        problem(("entry", "context"), "entry context must be a dialplan context's name")
    for key in entry:
        if key not in ("dnid", "context"):
            problem(("entry", key), f"unknown key '{key}' in entry (dnid, context)")


def _check_node(
    node_id: str, kind: str, spec: dict[str, Any], languages: tuple[str, ...], where: tuple[str, ...], problem: Problem
) -> None:
    """What a node's types alone do not check; `spec` holds only the values of the right type."""

    def bad(key: tuple[str, ...], text: str) -> None:
        problem(where + key, f"node '{node_id}': {text}")

    for key, (low, high, unit) in RANGES.items():
        if key in spec and not low <= spec[key] <= high:
            bad((key,), f"'{key}' must be from {low} to {high}{unit}, not {spec[key]}")
    for key, (rule, allowed) in TEXT_RULES.items():
        if key in spec and not rule.fullmatch(spec[key]):
            bad((key,), f"'{key}' {spec[key]!r} is not {allowed}")
    for index, skill in enumerate(spec.get("skills", [])):
        if not isinstance(skill, str) or not QUEUE_NAME.fullmatch(skill):
            bad(("skills", str(index)), f"skill {skill!r} is not a skill name ({NAMES})")
    for key in ("prompt", "invalid_prompt", "timeout_prompt"):
        value = spec.get(key)
        if isinstance(value, dict):
            missing = [lang for lang in languages if lang not in value]
            if missing:
                bad((key,), f"'{key}' has no prompt for {', '.join(missing)}")
            for language in value:
                if language not in languages:
                    bad((key, language), f"'{key}' has a prompt for {language}, not one of the languages {list(languages)}")
            sounds = {(key, language): name for language, name in value.items()}
        else:
            sounds = {(key,): value} if value is not None else {}
        for sub, name in sounds.items():
            if not isinstance(name, str) or not SOUND.fullmatch(name):
                bad(sub, f"'{key}' {name!r} is not {SOUND_RULE}")
    for key in ("options", "choices", "values"):
        if key in spec and not spec[key]:
            bad((key,), f"'{key}' is empty")
    for key in ("options", "choices"):
        for digits in spec.get(key, {}):
            if not DTMF.fullmatch(digits):
                bad((key, digits), f"'{digits}' is not a key a phone can send (0-9, * and #)")
    for digits, lang in spec.get("choices", {}).items():
        if lang not in languages:
            bad(("choices", digits), f"choice '{digits}' is language '{lang}', not one of {list(languages)}")
    repeat = spec.get("repeat_key")
    if repeat is not None and (not KEY.fullmatch(repeat) or any(k.startswith(repeat) for k in spec.get("options", {}))):
        bad(("repeat_key",), f"repeat_key '{repeat}' must be one phone key that no option starts with")
    for name, value in spec.get("values", {}).items():
        if not VARIABLE.fullmatch(name):
            bad(("values", name), f"'values': {name!r} is not {VARIABLE_RULE}")
        if not _is(value, (str, int, float)) or any(c in str(value) for c in '"\\'):
            bad(("values", name), f"'values': {name} must be text (without '\"' or '\\') or a number, not {value!r}")
    if kind == "collect":
        check = spec.get("validate")
        if check is not None and check not in ("length", "regex", *CHECKS):
            bad(("validate",), f"validate must be one of length, regex, {', '.join(CHECKS)}")
        if check == "regex":
            try:
                re.compile(spec.get("regex", ""))
            except re.error as exc:
                bad(("regex",), f"regex does not compile: {exc}")
            if not spec.get("regex"):
                bad((), "validate: regex needs a 'regex'")
        if spec.get("terminator", "#") != "#":
            bad(("terminator",), "terminator must be '#' (Asterisk's GET DATA ends input on '#' only)")
        if spec.get("min_digits", 1) > spec.get("max_digits", 64):
            bad(("min_digits",), "min_digits is more than max_digits")
    if spec.get("mode", "app_queue") not in ("app_queue", "native"):
        bad(("mode",), "mode must be app_queue (Asterisk's queues) or native (our ACD)")
    for days, hours in spec.get("open", {}).items():
        try:
            parse_hours(days, str(hours))
        except ValueError as exc:
            bad(("open", days), str(exc))


def parse_hours(days: str, hours: str) -> tuple[set[int], list[tuple[time, time]]]:
    """'mon-fri' and '08:00-12:00,13:00-18:00' -> weekdays (0 = Monday) and time spans."""
    weekdays: set[int] = set()
    for part in days.lower().split(","):
        first, _, last = part.strip().partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"'{days}' is not days like mon-fri or sat,sun")
        a, b = DAYS.index(first), DAYS.index(last or first)
        weekdays |= set(range(a, b + 1)) if a <= b else set(range(a, 7)) | set(range(0, b + 1))
    spans = []
    for span in hours.split(","):
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", span)
        if not match:
            raise ValueError(f"'{hours}' is not hours like 08:00-18:00")
        h1, m1, h2, m2 = (int(x) for x in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h1, m1) >= (h2, m2):
            raise ValueError(f"'{span.strip()}' is not a time span within a day")
        spans.append((time(h1, m1), time(23, 59, 59) if h2 == 24 else time(h2, m2)))
    return weekdays, spans


def _check_graph(nodes: dict[str, Node], start: str, path: str, problems: list[str]) -> None:
    """Nodes never reached from the start, and nodes from which no path reaches an ending."""
    ahead = {node.id: list(node.edges().values()) for node in nodes.values()}
    behind: dict[str, list[str]] = {}
    for source, targets in ahead.items():
        for target in targets:
            behind.setdefault(target, []).append(source)
    reached = _closure([start], ahead)
    exits = _closure([n.id for n in nodes.values() if n.kind in TERMINAL], behind)
    for node in nodes.values():
        if node.id not in reached:
            problems.append(f"{path}:{node.line}: node '{node.id}': never reached from start '{start}'")
        elif node.id not in exits:
            problems.append(
                f"{path}:{node.line}: node '{node.id}': loop with no exit (no path from here ever reaches a queue, voicemail, callback or hangup)"
            )


def _closure(first: list[str], edges: dict[str, list[str]]) -> set[str]:
    """Every node `edges` lead to from `first` (and `first`), each edge followed once."""
    seen, todo = set(first), list(first)
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen
