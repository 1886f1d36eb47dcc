"""A flow as a tree a person can read, or as Graphviz DOT."""

from __future__ import annotations

from ivr.flow import Flow, Node


def _label(node: Node) -> str:
    extra = f" {node.spec['queue']}" if node.kind in ("queue", "callback") else ""
    return f"{node.id} ({node.kind}{extra})"


def _edges(node: Node) -> list[tuple[str, str]]:
    return [(label.removeprefix("option "), target) for label, target in node.edges().items()]


def _quote(text: str) -> str:
    """A DOT string: any quote or backslash in a node's name would otherwise end or bend it."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_text(flow: Flow) -> str:
    """The menu tree from the start node, a node already shown referred to; walked with a stack, as a flow may be deeper than recursion."""
    lines: list[str] = [f"{flow.name} ({', '.join(flow.languages)}, {flow.timezone.key})"]
    shown: set[str] = set()
    todo = [(flow.start, "  ", "")]
    while todo:
        node_id, indent, via = todo.pop()
        node = flow.nodes[node_id]
        prefix = f"{indent}{via} -> " if via else indent
        if node_id in shown:
            lines.append(f"{prefix}{node_id} (see above)")
            continue
        shown.add(node_id)
        lines.append(f"{prefix}{_label(node)}")
        todo += [(target, indent + "    ", label) for label, target in reversed(_edges(node))]
    return "\n".join(lines) + "\n"


def to_dot(flow: Flow) -> str:
    """Graphviz DOT: one box per node, one labelled arrow per way out."""
    out = [f"digraph {_quote(flow.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
    for node in flow.nodes.values():
        shape = ", style=rounded" if node.kind in ("queue", "voicemail", "callback", "hangup") else ""
        out.append(f"  {_quote(node.id)} [label={_quote(_label(node))}{shape}];")
    for node in flow.nodes.values():
        for label, target in _edges(node):
            out.append(f"  {_quote(node.id)} -> {_quote(target)} [label={_quote(label)}];")
    out.append("}")
    return "\n".join(out) + "\n"
