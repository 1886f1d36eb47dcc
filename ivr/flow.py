"""IVR flows: declared in YAML, checked on load, errors naming the file, the line and the node.

A flow is a graph of nodes; each node has a kind and names the nodes it can go
to. Checked: every key and type, every reference, prompts for every language,
digit maps, nodes never reached from `start`, and nodes from which no path
ever ends the IVR (a loop with no exit). See contrib/ivr/*.yaml for examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ivr.validators import CHECKS
from kernel.exceptions import InputError

TERMINAL = {"queue", "voicemail", "callback", "hangup"}
DTMF = re.compile(r"^[0-9*#]+$")
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

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
MAX_VALUES = 100_000  # a big flow has a few thousand
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
        out = {f"option {k}": v for k, v in self.spec["options"].items()} if self.kind == "menu" else {}
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


class _Loader:
    """YAML to plain data, remembering the line of every mapping key."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: dict[tuple[str, ...], int] = {}
        self.problems: list[str] = []
        self.values = 0

    def load(self, text: str) -> Any:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            self.values = 0
            return self._value(root, ()) if root is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{self.path}:{mark.line + 1}" if mark else self.path
            raise InputError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
        except RecursionError as exc:
            raise InputError(f"{self.path}: nested too deep to be a flow") from exc

    def _value(self, node: yaml.Node, path: tuple[str, ...]) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:  # aliases of aliases (a "billion laughs") would expand without end
            raise InputError(f"{self.path}:{node.start_mark.line + 1}: more than {MAX_VALUES:,} values: not a flow (aliases?)")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(yaml.safe_load(yaml.serialize(key_node)))
                line = key_node.start_mark.line + 1
                if key in out:
                    self.problems.append(f"{self.path}:{line}: {'.'.join(path + (key,))}: key appears twice")
                self.lines[path + (key,)] = line
                out[key] = self._value(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._value(item, path + (str(i),)) for i, item in enumerate(node.value)]
        return yaml.safe_load(yaml.serialize(node))

    def line(self, *path: str) -> int:
        for size in range(len(path), 0, -1):
            if path[:size] in self.lines:
                return self.lines[path[:size]]
        return 1


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
        problems.append(f"{path}:{loader.line(*line_path)}: {text}")

    for key, (required, kind) in TOP.items():
        if required and key not in data:
            problem((), f"missing '{key}'")
        elif key in data and not isinstance(data[key], kind):
            problem((key,), f"'{key}' must be {_type_name(kind)}")
    for key in data:
        if key not in TOP:
            problem((key,), f"unknown key '{key}'")
    if problems and not isinstance(data.get("nodes"), dict):
        raise InputError("invalid IVR flow:\n  " + "\n  ".join(problems))
    languages = tuple(str(x) for x in data.get("languages") or ["pt-BR"])
    default_language = str(data.get("default_language") or languages[0])
    if default_language not in languages:
        problem(("default_language",), f"default_language '{default_language}' is not one of the languages {list(languages)}")
    try:
        tz = ZoneInfo(str(data.get("timezone") or "America/Sao_Paulo"))
    except (ZoneInfoNotFoundError, ValueError):
        problem(("timezone",), f"unknown time zone '{data.get('timezone')}'")
        tz = ZoneInfo("UTC")
    holidays = set()
    for index, day in enumerate(data.get("holidays") or []):
        try:
            holidays.add(day if isinstance(day, date) else date.fromisoformat(str(day)))
        except ValueError:
            problem(("holidays", str(index)), f"holiday '{day}' is not a date (YYYY-MM-DD)")
    nodes: dict[str, Node] = {}
    for node_id, spec in (data.get("nodes") or {}).items():
        where = ("nodes", node_id)
        if not isinstance(spec, dict) or "kind" not in spec:
            problem(where, f"node '{node_id}': needs a 'kind' (one of {', '.join(SCHEMA)})")
            continue
        kind = spec["kind"]
        if kind not in SCHEMA:
            problem(where + ("kind",), f"node '{node_id}': unknown kind '{kind}' (one of {', '.join(SCHEMA)})")
            continue
        schema = SCHEMA[kind]
        for key, (required, kind_type, _) in schema.items():
            if key not in spec:
                if required:
                    problem(where, f"node '{node_id}': missing '{key}'" + (" (the prompt to play)" if key == "prompt" else ""))
            elif not isinstance(spec[key], kind_type) or (kind_type is int and isinstance(spec[key], bool)):
                problem(where + (key,), f"node '{node_id}': '{key}' must be {_type_name(kind_type)}")
        for key in spec:
            if key != "kind" and key not in schema:
                problem(where + (key,), f"node '{node_id}': unknown key '{key}' for a {kind} node")
        _check_node(node_id, kind, spec, languages, where, problem)
        nodes[node_id] = Node(node_id, kind, loader.line(*where), spec)
    start = data.get("start")
    if isinstance(start, str) and start not in nodes and "nodes" in data:
        problem(("start",), f"start node '{start}' is not defined")
    for node in nodes.values():
        for label, target in node.edges().items():
            key = ("options", label.split(" ", 1)[1]) if label.startswith("option ") else (label,)
            if not isinstance(target, str):
                problem(("nodes", node.id) + key, f"node '{node.id}': {label} goes to {target!r}: a target is one node's name")
            elif target not in nodes:
                problem(("nodes", node.id) + key, f"node '{node.id}': {label} goes to unknown node '{target}'")
    _check_entry(data.get("entry"), problem)
    if not problems and isinstance(start, str):
        _check_graph(nodes, start, path, problems)
    if problems:
        raise InputError("invalid IVR flow:\n  " + "\n  ".join(problems))
    return Flow(str(data["flow"]), path, start, nodes, languages, default_language, tz, frozenset(holidays), dict(data.get("entry") or {}))


def _check_entry(entry: object, problem) -> None:  # type: ignore[no-untyped-def]
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


def _check_node(node_id: str, kind: str, spec: dict[str, Any], languages: tuple[str, ...], where: tuple[str, ...], problem) -> None:
    for key in ("timeout", "retries", "max_digits", "min_digits", "priority"):
        value = spec.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (value < 0 or (key == "timeout" and value == 0)):
            problem(where + (key,), f"node '{node_id}': '{key}' must be {'more than 0' if key == 'timeout' else '0 or more'}, not {value}")
    for key in ("prompt", "invalid_prompt", "timeout_prompt"):
        value = spec.get(key)
        if isinstance(value, dict):
            missing = [lang for lang in languages if not value.get(lang)]
            if missing:
                problem(where + (key,), f"node '{node_id}': '{key}' has no prompt for {', '.join(missing)}")
        elif isinstance(value, str) and not value.strip():
            problem(where + (key,), f"node '{node_id}': '{key}' is empty")
    for key in ("options", "choices"):
        mapping = spec.get(key)
        if isinstance(mapping, dict):
            if not mapping:
                problem(where + (key,), f"node '{node_id}': '{key}' is empty")
            for digits in mapping:
                if not DTMF.match(str(digits)):
                    problem(where + (key, str(digits)), f"node '{node_id}': '{digits}' is not a key a phone can send (0-9, * and #)")
            if key == "choices":
                for digits, lang in mapping.items():
                    if lang not in languages:
                        problem(
                            where + (key, str(digits)),
                            f"node '{node_id}': choice '{digits}' is language '{lang}', not one of {list(languages)}",
                        )
    repeat = spec.get("repeat_key")
    if isinstance(repeat, str) and (not DTMF.match(repeat) or repeat in (spec.get("options") or {})):
        problem(where + ("repeat_key",), f"node '{node_id}': repeat_key '{repeat}' must be a phone key not used by an option")
    if kind == "collect":
        check = spec.get("validate")
        if check is not None and check not in ("length", "regex", *CHECKS):
            problem(where + ("validate",), f"node '{node_id}': validate must be one of length, regex, {', '.join(CHECKS)}")
        if check == "regex":
            try:
                re.compile(str(spec.get("regex") or ""))
            except re.error as exc:
                problem(where + ("regex",), f"node '{node_id}': regex does not compile: {exc}")
            if not spec.get("regex"):
                problem(where, f"node '{node_id}': validate: regex needs a 'regex'")
        terminator = spec.get("terminator", "#")
        if terminator != "#":
            problem(where + ("terminator",), f"node '{node_id}': terminator must be '#' (Asterisk's GET DATA ends input on '#' only)")
        if isinstance(spec.get("max_digits"), int) and isinstance(spec.get("min_digits"), int) and spec["min_digits"] > spec["max_digits"]:
            problem(where + ("min_digits",), f"node '{node_id}': min_digits is more than max_digits")
    if kind == "queue" and spec.get("mode", "app_queue") not in ("app_queue", "native"):
        problem(where + ("mode",), f"node '{node_id}': mode must be app_queue (Asterisk's queues) or native (our ACD)")
    if kind == "business_hours" and isinstance(spec.get("open"), dict):
        for days, hours in spec["open"].items():
            try:
                parse_hours(str(days), str(hours))
            except ValueError as exc:
                problem(where + ("open", str(days)), f"node '{node_id}': {exc}")


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
    reached, todo = {start}, [start]
    while todo:
        for target in nodes[todo.pop()].edges().values():
            if target not in reached:
                reached.add(target)
                todo.append(target)
    for node in nodes.values():
        if node.id not in reached:
            problems.append(f"{path}:{node.line}: node '{node.id}': never reached from start '{start}'")
    exits = {n.id for n in nodes.values() if n.kind in TERMINAL}
    changed = True
    while changed:
        changed = False
        for node in nodes.values():
            if node.id not in exits and any(t in exits for t in node.edges().values()):
                exits.add(node.id)
                changed = True
    for node in nodes.values():
        if node.id in reached and node.id not in exits:
            problems.append(
                f"{path}:{node.line}: node '{node.id}': loop with no exit (no path from here ever reaches a queue, voicemail, callback or hangup)"
            )
