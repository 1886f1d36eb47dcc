"""Administration commands: panel users, recordings, customers, IVR flow checks, the database."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

from callcenter.commands.common import configured_store, must_exist
from callcenter.engine import recordings_library
from cti_panel.customers import import_csv
from cti_panel.users import Users
from ivr.draw import to_dot, to_text
from ivr.flow import load_flow
from kernel import config
from kernel.db import make_engine, migrate, open_store
from kernel.exceptions import ConfigError, Refused
from kernel.who import LANGS, ROLES, Who


def cmd_users(args: argparse.Namespace) -> int:
    """Add, list, disable users, change a role or set a password (asked for twice, never on the command line); every
    change but add and list ends the user's sessions."""
    settings = config.load(args.config)
    users = Users(open_store(settings.database.url).sessions)
    if args.users_command == "list":
        for u in users.list():
            print(
                f"{u.login:<16} {u.role:<10} {u.lang:<6} {u.agent or '-':<12} {u.interface or '-':<20} {'disabled' if u.disabled else ''}"
            )
        return 0
    if args.users_command in ("disable", "enable"):
        users.set_disabled(args.login, args.users_command == "disable")
        print(f"{args.login}: {args.users_command}d")
        return 0
    if args.users_command == "role":
        users.set_role(args.login, args.role)
        print(f"{args.login}: now {args.role} (their sessions ended)")
        return 0
    if args.users_command == "passwd":
        users.passwd(args.login, _ask_password(args.password_stdin))
        print(f"{args.login}: password changed")
        return 0
    unknown = [q for q in args.queues if q not in settings.acd.queues]
    if settings.acd.queues and unknown:
        raise Refused(f"--queues {unknown[0]!r}: not a queue of [acd.queues] in {settings.source} ({', '.join(settings.acd.queues)})")
    users.add(
        args.login,
        _ask_password(args.password_stdin),
        args.role,
        lang=args.lang,
        display_name=args.name or "",
        agent=args.agent,
        interface=args.interface,
        extension=args.extension,
        queues=args.queues,
    )
    print(f"{args.login}: added as {args.role}")
    return 0


def _ask_password(from_stdin: bool) -> str:
    """The password from stdin's first line, or asked twice on the terminal (never echoed: with no terminal, refused)."""
    if from_stdin:
        try:
            return sys.stdin.buffer.readline().decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise Refused("the password on stdin is not UTF-8") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            first, second = getpass.getpass("Password: "), getpass.getpass("Again: ")
        except (getpass.GetPassWarning, EOFError) as exc:
            raise Refused("no terminal to ask the password on: give it on stdin with --password-stdin") from exc
    if first != second:
        raise Refused("the two passwords differ")
    return first


def cmd_recordings(args: argparse.Namespace) -> int:
    """Retention and legal holds: purge (scheduled in the engine too), hold, list."""
    settings = config.load(args.config)
    library = recordings_library(settings, open_store(settings.database.url))
    if library is None:
        raise ConfigError(f"{settings.source}: recordings.enabled is false")
    if args.recordings_command == "hold":
        library.hold(args.id, not args.off)
        print(f"recording {args.id}: legal hold {'off' if args.off else 'on'}")
        return 0
    if args.recordings_command == "list":
        admin = Who(0, "cli", "admin", "en", None, None, None, ())
        for row in library.visible(admin, limit=args.limit):
            print(
                f"{row.id:>6} {row.started_at:%Y-%m-%d %H:%M} {row.queue or '-':<10} {row.agent or '-':<12} {row.caller_number or '-':<15} "
                f"{row.status:<9} {row.duration_s or 0:>6.0f} s {'HOLD' if row.legal_hold else ''}"
            )
        return 0
    deleted, kept = library.purge(datetime.now(UTC), dry_run=args.dry_run, customer=args.customer)
    verb = "would delete" if args.dry_run else "deleted"
    for item in deleted:
        print(f"{verb} recording {item['id']} ({item['queue']}, {item['started_at']}, call {item['linkedid']})")
    for item in kept:
        print(f"kept recording {item['id']}: {item['why']}")
    print(f"{len(deleted)} recording(s) {verb}, {len(kept)} kept")
    return 0


def cmd_customers(args: argparse.Namespace) -> int:
    """Import customers for the screen pop from a CSV file."""
    must_exist(args.csv)
    added, updated = import_csv(configured_store(args).sessions, args.csv)
    print(f"{args.csv}: {added} customers added, {updated} updated")
    return 0


def cmd_ivr_check(args: argparse.Namespace) -> int:
    """Check an IVR flow file; every problem is printed with its line."""
    flow = load_flow(args.flow)
    kinds = sorted({n.kind for n in flow.nodes.values()})
    print(f"{args.flow}: flow '{flow.name}' is valid: {len(flow.nodes)} nodes ({', '.join(kinds)}), start '{flow.start}'")
    return 0


def cmd_ivr_draw(args: argparse.Namespace) -> int:
    """Print a flow's menu tree as text, or as Graphviz DOT with --dot."""
    flow = load_flow(args.flow)
    try:
        sys.stdout.write(to_dot(flow) if args.dot else to_text(flow))
        sys.stdout.flush()
    except BrokenPipeError:  # a reader that stopped early (| head): quietly, as Python's signal docs show
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Create or update the database schema."""
    settings = config.load(args.config)
    migrate(make_engine(settings.database.url))
    print(f"database at {settings.database.url} is up to date")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the command line."""
    p = sub.add_parser("users", help="panel users: add, list, passwd, role, disable, enable")
    usersub = p.add_subparsers(dest="users_command", required=True)
    q = usersub.add_parser("add", help="add a user (password asked twice, or read from stdin with --password-stdin)")
    q.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    q.add_argument("login")
    q.add_argument("--role", choices=ROLES, required=True)
    q.add_argument("--name", help="name shown in the panel")
    q.add_argument("--lang", choices=LANGS, default="en")
    q.add_argument("--agent", help="the ACD agent (queue member name) an agent user is")
    q.add_argument("--interface", help="the user's phone, e.g. PJSIP/1001")
    q.add_argument("--extension", help="digits others transfer to")
    q.add_argument("--queues", nargs="*", default=[], help="queues the user works in or supervises (default: all)")
    usersub.add_parser("list", help="list users")
    q = usersub.add_parser("role", help="give a user another role (their sessions end)")
    q.add_argument("login")
    q.add_argument("role", choices=ROLES)
    for name in ("passwd", "disable", "enable"):
        q = usersub.add_parser(name, help=f"{name} a user")
        q.add_argument("login")
        q.add_argument(
            "--password-stdin", action="store_true", help=argparse.SUPPRESS if name != "passwd" else "read the new password from stdin"
        )
    p.set_defaults(func=cmd_users)

    p = sub.add_parser("recordings", help="recordings: purge by retention or a customer's request, legal holds, list")
    recsub = p.add_subparsers(dest="recordings_command", required=True)
    q = recsub.add_parser("purge", help="delete recordings past retention (never on hold, never under the legal minimum)")
    q.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    q.add_argument("--customer", help="erase this caller number's recordings (on request), holds and the legal minimum still apply")
    q = recsub.add_parser("hold", help="put a recording on legal hold (or --off)")
    q.add_argument("id", type=int)
    q.add_argument("--off", action="store_true")
    q = recsub.add_parser("list", help="the newest recordings")
    q.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_recordings)

    p = sub.add_parser("customers", help="import customers for the screen pop from CSV (number,name,company,email,notes)")
    p.add_argument("csv", type=Path)
    p.set_defaults(func=cmd_customers)

    p = sub.add_parser("ivr", help="IVR flows")
    ivrsub = p.add_subparsers(dest="ivr_command", required=True)
    q = ivrsub.add_parser("check", help="validate a flow file")
    q.add_argument("flow", type=Path)
    q.set_defaults(func=cmd_ivr_check)
    q = ivrsub.add_parser("draw", help="print a flow's menu tree")
    q.add_argument("flow", type=Path)
    q.add_argument("--dot", action="store_true", help="Graphviz DOT instead of text")
    q.set_defaults(func=cmd_ivr_draw)

    p = sub.add_parser("db", help="database maintenance")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    q = dbsub.add_parser("upgrade", help="create or migrate the schema")
    q.set_defaults(func=cmd_db_upgrade)
