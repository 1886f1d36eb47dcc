"""A flow as a tree a person can read, or as Graphviz DOT."""

from __future__ import annotations

from ivr.flow import Flow, Node


def _label(node: Node) -> str:
    extra = f" {node.spec['queue']}" if node.kind in ("queue", "callback") else ""
    return f"{node.id} ({node.kind}{extra})"


def _edges(node: Node) -> list[tuple[str, str]]:
    return [(label.removeprefix("option "), target) for label, target in node.edges().items()]


def to_text(flow: Flow) -> str:
    """The menu tree from the start node; a node already shown is referred to, not repeated."""
    lines: list[str] = [f"{flow.name} ({', '.join(flow.languages)}, {flow.timezone.key})"]
    shown: set[str] = set()

    def walk(node_id: str, indent: str, via: str) -> None:
        node = flow.nodes[node_id]
        prefix = f"{indent}{via} -> " if via else indent
        if node_id in shown:
            lines.append(f"{prefix}{node_id} (see above)")
            return
        shown.add(node_id)
        lines.append(f"{prefix}{_label(node)}")
        for label, target in _edges(node):
            walk(target, indent + "    ", label)

    walk(flow.start, "  ", "")
    return "\n".join(lines) + "\n"


def to_dot(flow: Flow) -> str:
    """Graphviz DOT: one box per node, one labelled arrow per way out."""
    out = [f'digraph "{flow.name}" {{', "  rankdir=LR;", "  node [shape=box];"]
    for node in flow.nodes.values():
        shape = ", style=rounded" if node.kind in ("queue", "voicemail", "callback", "hangup") else ""
        out.append(f'  "{node.id}" [label="{_label(node)}"{shape}];')
    for node in flow.nodes.values():
        for label, target in _edges(node):
            out.append(f'  "{node.id}" -> "{target}" [label="{label}"];')
    out.append("}")
    return "\n".join(out) + "\n"
