"""The words of `crsbot rulebook check | diff | sheet`: what a pharmacist reads before signing a
rulebook off. The sheet is one document model rendered as Markdown and as HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass

from grading.rulebook import Rulebook
from grading.rulebook_review import Change, ChangeKind, Item, diff, filled, items, still_missing
from messages.layout import JUDGMENT, PRODUCT_NAMES, STATUS_TAGS

NOT_REVIEWED = ("not recorded: a site rulebook needs reviewed_by and reviewed_on in [rulebook] "
                "before crsbot serve will load it")


def _status(item: Item) -> str:
    return STATUS_TAGS.get(item.status, item.status)


def _review(book: Rulebook) -> str:
    meta = book.rulebook
    if meta.reviewed_by and meta.reviewed_on:
        return f"reviewed by {meta.reviewed_by} on {meta.reviewed_on}"
    return NOT_REVIEWED


def _name(book: Rulebook) -> str:
    return f"{book.rulebook.id} v{book.rulebook.version} ({PRODUCT_NAMES[book.rulebook.product]})"


def _content(item: Item) -> str:
    if item.status == "not_available":
        return f"{item.text} - not in this rulebook; see {item.see}"
    return item.text


# --------------------------------------------------------------------------- check and diff (terminal)


def check_report(book: Rulebook, default: Rulebook, origin: str) -> str:
    every = list(items(book).values())
    lines = [f"{origin}: valid rulebook {_name(book)}.", f"Review: {_review(book)}.", "",
             f"Entries ({len(every)}), each with its source:"]
    width = max(len(i.key) for i in every)
    for item in every:
        lines.append(f"  {item.key:<{width}}  {_status(item):<15}  {item.source}")
    lines += ["", "Sources:"] + [f"  {key}: {citation}" for key, citation in book.sources.items()]
    fills = filled(default, book)
    lines += ["", f"Fills {len(fills)} item(s) the shipped default ({_name(default)}) leaves not available:"]
    lines += [f"  {new.key}: now {_status(new)} [{new.source}]" for _old, new in fills] or ["  none"]
    missing = still_missing(book)
    lines += ["", f"Still not in this rulebook ({len(missing)}):"]
    lines += [f"  {item.key}: see {item.see}" for item in missing] or ["  none"]
    return "\n".join(lines)


def _change_lines(change: Change) -> list[str]:
    if change.kind is ChangeKind.ADDED and change.after:
        return [f"+ {change.key} (added): {_status(change.after)} [{change.after.source}] {_content(change.after)}"]
    if change.kind is ChangeKind.REMOVED and change.before:
        return [f"- {change.key} (removed): was {_status(change.before)} [{change.before.source}] "
                f"{_content(change.before)}"]
    assert change.before and change.after
    lines = [f"~ {change.key} (changed: {', '.join(change.fields)})"]
    for field in change.fields:
        lines.append(f"    {field}: {change.before.fields.get(field)!r} -> {change.after.fields.get(field)!r}")
    return lines


def diff_report(book: Rulebook, default: Rulebook, origin: str) -> str:
    changes = diff(default, book)
    lines = [f"{origin} ({_name(book)}) against the shipped default {_name(default)}:",
             f"{len(changes)} item(s) differ." if changes else "No entry differs from the shipped default."]
    for change in changes:
        lines += _change_lines(change)
    return "\n".join(lines)


# --------------------------------------------------------------------------- the review sheet


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Heading | Para | Table


def sheet(book: Rulebook, default: Rulebook, origin: str, fingerprint: str) -> list[Block]:
    meta = book.rulebook
    changes = diff(default, book)
    fills = filled(default, book)
    missing = still_missing(book)
    return [
        Heading(f"Rulebook review sheet: {meta.title}", 1),
        Table(("", ""), (
            ("Rulebook", f"{meta.id} version {meta.version}"),
            ("Product", PRODUCT_NAMES[meta.product]),
            ("File", origin),
            ("SHA-256 of the file", fingerprint),
            ("Review recorded in the file", _review(book)),
            ("Compared with", f"crsbot's shipped default {default.rulebook.id} v{default.rulebook.version}"),
        )),
        Para("Sign-off applies to this exact file: crsbot shows the reviewer and date from [rulebook] in "
             "the footer of every reply, and the SHA-256 above identifies the content signed."),
        Heading(f"Changes against the shipped default ({len(changes)})"),
        Table(("Item", "Change", "Default", "This rulebook"),
              tuple((c.key, c.kind.value + (f" ({', '.join(c.fields)})" if c.fields else ""),
                     _cell(c.before), _cell(c.after)) for c in changes))
        if changes else Para("None: the content is the shipped default's."),
        Heading(f"Items the default leaves 'not in rulebook' that this rulebook fills ({len(fills)})"),
        Table(("Item", "Default says", "This rulebook says", "Status", "Source"),
              tuple((new.key, f"not in rulebook; see {old.see}", new.text, _status(new), new.source)
                    for old, new in fills)) if fills else Para("None."),
        Heading(f"Still not in this rulebook ({len(missing)})"),
        Para("For these the bot says it has no rulebook text and names the label section to read."),
        Table(("Item", "Label section to consult"), tuple((i.key, i.see or "") for i in missing))
        if missing else Para("None."),
        Heading("Every entry"),
        Table(("Item", "Status", "Source", "What the bot says"),
              tuple((i.key, _status(i), i.source, _content(i)) for i in items(book).values())),
        Heading("Sources"),
        Table(("Key", "Citation"), tuple(book.sources.items())),
        Heading("Sign-off (pharmacy and therapeutics committee)"),
        Table(("", ""), (("Reviewed by (name, role)", ""), ("Signature", ""), ("Date", ""),
                         ("Approved for use from", ""), ("Next review due", ""))),
        Para(JUDGMENT),
    ]


def _cell(item: Item | None) -> str:
    if item is None:
        return "-"
    return f"{_status(item)} [{item.source}] {_content(item)}".strip() if item.status else item.text


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Para):
            out.append(block.text)
        else:
            out.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
            out.append("|" + "---|" * len(block.header))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        out.append("")
    return "\n".join(out)


def to_html(blocks: list[Block]) -> str:
    title = next((b.text for b in blocks if isinstance(b, Heading)), "Rulebook review sheet")
    out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}"
           "table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}"
           "td,th{border:1px solid #999;padding:.3rem;text-align:left;vertical-align:top}"
           "@media print{h2{page-break-after:avoid}}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            out.append(f"<p>{html.escape(block.text)}</p>")
        else:
            out.append("<table>")
            if any(block.header):
                out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in block.header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in block.rows]
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
