"""The subset of Asterisk's extensions.conf / queues.conf the simulator runs.

Reads the same files a real Asterisk reads (contexts, ``exten =>`` and
``same =>`` lines, ``n`` priorities, ``n(label)``, ``[globals]``), so the
fidelity tests run the very configuration the recorded traces came from.
Extension patterns (``_X.``) are matched as Asterisk does for X, Z, N, [...]
and the trailing ``.``/``!``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kernel.exceptions import InputError


@dataclass(frozen=True, slots=True)
class Step:
    """One priority of an extension: the application and its raw arguments."""

    priority: int
    app: str
    data: str
    label: str | None = None


@dataclass
class Dialplan:
    """Contexts -> extensions -> ordered steps, plus [globals]."""

    contexts: dict[str, dict[str, list[Step]]] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)

    def step(self, context: str, exten: str, priority: int) -> Step | None:
        """The step at context/exten/priority, or None where the dialplan ends."""
        steps = self.extension(context, exten)
        if steps is None:
            return None
        for step in steps:
            if step.priority == priority:
                return step
        return None

    def extension(self, context: str, exten: str) -> list[Step] | None:
        """The steps of the extension that matches `exten` in `context`."""
        ctx = self.contexts.get(context, {})
        if exten in ctx:
            return ctx[exten]
        for pattern, steps in ctx.items():
            if pattern.startswith("_") and _pattern(pattern).fullmatch(exten):
                return steps
        return None

    def exists(self, context: str, exten: str) -> bool:
        """Whether an extension matches (Asterisk's ast_exists_extension)."""
        return self.extension(context, exten) is not None

    def can_match_more(self, context: str, prefix: str) -> bool:
        """Whether some longer extension starts with `prefix` (more digits could still match)."""
        for exten in self.contexts.get(context, {}):
            if exten.startswith("_"):
                if _pattern(exten, partial=True).fullmatch(prefix) and not _pattern(exten).fullmatch(prefix):
                    return True
            elif len(exten) > len(prefix) and exten.startswith(prefix):
                return True
        return False

    def label(self, context: str, exten: str, label: str) -> int | None:
        """The priority a label names."""
        for step in self.extension(context, exten) or []:
            if step.label == label:
                return step.priority
        return None


def _pattern(pattern: str, partial: bool = False) -> re.Pattern[str]:
    out = []
    body = pattern[1:]
    i = 0
    while i < len(body):
        c = body[i]
        if c == "X":
            out.append("[0-9]")
        elif c == "Z":
            out.append("[1-9]")
        elif c == "N":
            out.append("[2-9]")
        elif c == "[":
            end = body.index("]", i)
            out.append(body[i : end + 1])
            i = end
        elif c == ".":
            out.append(".+")
        elif c == "!":
            out.append(".*")
        else:
            out.append(re.escape(c))
        i += 1
    if partial:
        return re.compile("".join(f"(?:{p}" for p in out) + ")?" * len(out))
    return re.compile("".join(out))


_EXTEN = re.compile(r"^(exten|same)\s*=>?\s*(.*)$")
_APP = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(?:\((.*)\))?\s*$")


def load_dialplan(path: str | Path) -> Dialplan:
    """Parse extensions.conf; a line it cannot read raises naming file and line."""
    plan = Dialplan()
    context: str | None = None
    last_exten: str | None = None
    last_priority = 0
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        if line.startswith("[") and line.endswith("]"):
            context = line[1:-1].strip()
            plan.contexts.setdefault(context, {})
            last_exten, last_priority = None, 0
            continue
        if context is None:
            raise InputError(f"{where}: line outside any [context]")
        if context == "globals":
            key, sep, value = line.partition("=")
            if not sep:
                raise InputError(f"{where}: expected NAME=value in [globals]")
            plan.globals[key.strip()] = value.strip()
            continue
        match = _EXTEN.match(line)
        if not match:
            raise InputError(f"{where}: expected 'exten =>' or 'same =>'")
        kind, rest = match.groups()
        if kind == "exten":
            parts = rest.split(",", 2)
            if len(parts) < 3:
                raise InputError(f"{where}: expected exten => EXTEN,PRIORITY,App(args)")
            exten, prio, body = (p.strip() for p in parts)
        else:
            if last_exten is None:
                raise InputError(f"{where}: 'same =>' with no extension before it")
            exten = last_exten
            prio, _, body = rest.partition(",")
            prio, body = prio.strip(), body.strip()
        label = None
        label_match = re.match(r"^(\w+|n)\((\w+)\)$", prio)
        if label_match:
            prio, label = label_match.groups()
        if prio == "n":
            priority = last_priority + 1 if exten == last_exten else 1
        elif prio.isdigit():
            priority = int(prio)
        else:
            raise InputError(f"{where}: bad priority {prio!r}")
        app_match = _APP.match(body)
        if not app_match:
            raise InputError(f"{where}: bad application call {body!r}")
        app, data = app_match.group(1), app_match.group(2) or ""
        plan.contexts[context].setdefault(exten, []).append(Step(priority, app, data, label))
        last_exten, last_priority = exten, priority
    return plan


@dataclass(frozen=True, slots=True)
class MemberConf:
    """A static queue member line: interface, penalty, name, state interface."""

    interface: str
    penalty: int
    name: str
    state_interface: str


@dataclass
class QueueConf:
    """The queues.conf settings the simulator honours."""

    name: str
    strategy: str = "ringall"
    timeout: int = 15
    retry: int = 5
    wrapuptime: int = 0
    maxlen: int = 0
    servicelevel: int = 0
    joinempty: str = "yes"
    members: list[MemberConf] = field(default_factory=list)


def load_queues(path: str | Path) -> dict[str, QueueConf]:
    """Parse queues.conf ([general] is read but its options are Asterisk's defaults here)."""
    queues: dict[str, QueueConf] = {}
    current: QueueConf | None = None
    ints = {"timeout", "retry", "wrapuptime", "maxlen", "servicelevel"}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            name = line.strip("[]").strip()
            current = None if name == "general" else queues.setdefault(name, QueueConf(name))
            continue
        if current is None:
            continue
        key, _, value = (part.strip() for part in line.partition("=>" if "=>" in line else "="))
        if key == "member":
            parts = [p.strip() for p in value.split(",")]
            interface = parts[0]
            current.members.append(
                MemberConf(
                    interface,
                    int(parts[1] or 0) if len(parts) > 1 else 0,
                    parts[2] if len(parts) > 2 and parts[2] else interface,
                    parts[3] if len(parts) > 3 and parts[3] else interface,
                )
            )
        elif key in ints:
            try:
                setattr(current, key, int(value))
            except ValueError as exc:
                raise InputError(f"{path}:{number}: {key} must be a whole number, not {value!r}") from exc
        elif key in ("strategy", "joinempty"):
            setattr(current, key, value)
    return queues
