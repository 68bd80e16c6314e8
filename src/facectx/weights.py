"""Which pretrained weight files are installed: ``python -m facectx.weights list|check|path``
(or ``facectx-weights list|check|path``).

* ``list``: every entry's files, where each was found (or every place it would be looked
  for, and where to get it), and whether its checksum is pinned. Never hashes or downloads.
  A table on terminals of 120 columns or more, else one block per file (also when piped).
* ``check [NAME ...]``: hashes every present file, prints its sha256 (paste it into the entry
  to pin an unpinned file) and compares it with the pinned one. Exit code 1 on a mismatch, or
  when a NAME given on the command line has a missing file.
* ``path NAME [--role ROLE] [--download]``: the resolved path(s), or the full not-found error
  (exit code 2).
"""

from __future__ import annotations

import argparse
import shutil
import sys

from rich.console import Console
from rich.table import Table

from facectx.pretrained import registry
from facectx.pretrained.registry import ChecksumError, WeightsNotFoundError


def _rows(names: list[str] | None):
    entries = [registry.get_entry(n) for n in names] if names else registry.list_entries()
    for entry in entries:
        for role, spec in entry.files.items():
            yield entry, role, spec, registry.locate(spec)


#: narrower terminals get one block per file instead of the table (whose last column would
#: wrap into one word per line)
TABLE_MIN_COLUMNS = 120


def _pinned(spec) -> str:
    if not spec.sha256:
        return "not pinned"
    if any(c not in "0123456789abcdefABCDEF" for c in spec.sha256):
        return "not pinned yet (placeholder)"
    return "pinned" if len(spec.sha256) == 64 else "pinned (prefix)"


def _where(spec, hit) -> list[str]:
    """Where the file was found, or where to get it and every place it was looked for."""
    if hit is not None:
        return [str(hit[1])]
    return [
        f"get: {spec.source}",
        *([f"url: {spec.url}"] if spec.url else []),
        "looked in: " + "; ".join(registry.places(spec)),
    ]


def cmd_list(console: Console, width: int | None = None) -> int:
    """Every entry's files: a table on a wide terminal, one block per file when narrower than
    :data:`TABLE_MIN_COLUMNS` (``width``: None = the terminal's, 80 when not a terminal)."""
    import textwrap

    from rich.text import Text

    width = width or shutil.get_terminal_size((80, 24)).columns
    rows = list(_rows(None))
    if width >= TABLE_MIN_COLUMNS:
        table = Table(title="facectx pretrained weights", show_lines=True)
        for col in ("entry", "file", "status", "checksum", "where / how to get it"):
            table.add_column(col, overflow="fold")
        for entry, role, spec, hit in rows:
            label = f"{entry.name}\n[dim]{role}[/dim]" if len(entry.files) > 1 else entry.name
            status = f"[green]present[/green]\n{hit[0]}" if hit else "[red]absent[/red]"
            where = "\n".join(_where(spec, hit))
            table.add_row(label, spec.filename, status, _pinned(spec), where)
        console.print(table, width=width)
    else:
        console.print("[bold]facectx pretrained weights[/bold]", width=width)
        for entry, role, spec, hit in rows:
            name = f"{entry.name} ({role})" if len(entry.files) > 1 else entry.name
            status = f"[green]present[/green] ({hit[0]})" if hit else "[red]absent[/red]"
            head = Text.from_markup(f"[bold]{name}[/bold]  {status}  {_pinned(spec)}")
            head.truncate(width, overflow="ellipsis")
            console.print(head, width=width, no_wrap=True)
            lines = _where(spec, hit) if hit else [f"file: {spec.filename}", *_where(spec, hit)]
            for line in lines:  # wrapped, each piece indented under its entry
                for piece in textwrap.wrap(line, width - 4, break_on_hyphens=False):
                    console.print(Text("    " + piece), width=width, no_wrap=True)
    downloads = "disabled" if registry.downloads_disabled() else "allowed when online"
    console.print(
        f"downloads: {downloads} (set {' or '.join(registry.OFFLINE_ENVS)}=1 to disable); "
        f"hub cache: {registry.hub_checkpoints_dir()}",
        width=width,
    )
    return 0


def cmd_check(console: Console, names: list[str]) -> int:
    failed = False
    table = Table(title="checksums")
    for col in ("entry", "file", "sha256", "result"):
        table.add_column(col, overflow="fold")
    for entry, role, spec, hit in _rows(names or None):
        label = f"{entry.name} ({role})"
        if hit is None:
            missing_is_failure = bool(names)
            failed |= missing_is_failure
            table.add_row(
                label,
                spec.filename,
                "-",
                "[red]missing[/red]" if missing_is_failure else "[yellow]absent[/yellow]",
            )
            continue
        status = registry.checksum_status(hit[1], spec)
        digest = registry.sha256sum(hit[1])
        if status == "ok":
            result = "[green]ok[/green]"
        elif status == "unpinned":
            result = "[yellow]not pinned[/yellow]"
        else:
            failed = True
            result = f"[red]MISMATCH[/red] {status}"
        table.add_row(label, str(hit[1]), digest, result)
    console.print(table)
    return 1 if failed else 0


def cmd_path(name: str, role: str | None, download: bool) -> int:
    entry = registry.get_entry(name)
    roles = [role] if role else list(entry.files)
    status = 0
    for r in roles:
        try:
            p = registry.resolve(name, r, download=download)
        except (WeightsNotFoundError, ChecksumError) as e:
            print(e, file=sys.stderr)
            status = 2
            continue
        print(p if len(roles) == 1 else f"{r}\t{p}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m facectx.weights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="entries, their files and where they are")
    p_check = sub.add_parser("check", help="hash present files and compare with pinned sha256")
    p_check.add_argument("names", nargs="*", help="entries to check (default: all)")
    p_path = sub.add_parser("path", help="print the resolved path of an entry's file(s)")
    p_path.add_argument("name")
    p_path.add_argument("--role", default=None, help="one file of a multi-file entry")
    p_path.add_argument("--download", action="store_true", help="download if missing")
    args = parser.parse_args(argv)
    console = Console()
    try:
        if args.cmd == "list":
            return cmd_list(console)
        if args.cmd == "check":
            return cmd_check(console, args.names)
        return cmd_path(args.name, args.role, args.download)
    except KeyError as e:
        print(e.args[0], file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
