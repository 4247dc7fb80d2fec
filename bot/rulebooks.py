"""Loads rulebook files: the shipped defaults, overridden per product by a site's reviewed file(s).

`CRSBOT_RULEBOOK` may name one TOML file or a folder of them; each file declares its product.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from grading.errors import RulebookError
from grading.models import Product
from grading.rulebook import Rulebook, parse_rulebook

DEFAULT_FILES = ("lunsumio-iv.toml", "lunsumio-velo.toml")


def load_rulebook_text(text: str, origin: str) -> Rulebook:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulebookError(origin, None, f"not valid TOML ({exc})") from None
    return parse_rulebook(data, origin)


def load_rulebook_file(path: Path) -> Rulebook:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulebookError(str(path), None, f"cannot be read ({exc.strerror})") from None
    return load_rulebook_text(text, str(path))


def default_rulebooks() -> dict[Product, Rulebook]:
    folder = resources.files("grading") / "rulebooks"
    books = [load_rulebook_text((folder / name).read_text(encoding="utf-8"), f"grading/rulebooks/{name}")
             for name in DEFAULT_FILES]
    return {book.rulebook.product: book for book in books}


def load_rulebooks(site_path: str | Path | None) -> dict[Product, Rulebook]:
    """Defaults first, then each site file replaces the default for the product it declares."""
    books = default_rulebooks()
    if not site_path:
        return books
    path = Path(site_path)
    if path.is_dir():
        files = sorted(path.glob("*.toml"))
        if not files:
            raise RulebookError(str(path), None, "the folder holds no .toml rulebook")
    else:
        files = [path]
    for file in files:
        book = load_rulebook_file(file)
        require_review(book, str(file))
        books[book.rulebook.product] = book
    return books


def require_review(book: Rulebook, origin: str) -> None:
    """A site rulebook changes what the bot tells clinicians: it must say who signed it off and when."""
    meta = book.rulebook
    missing = [name for name in ("reviewed_by", "reviewed_on") if getattr(meta, name) is None]
    if missing:
        raise RulebookError(origin, None, f"a site rulebook needs {' and '.join(missing)} in [rulebook] "
                                          "(who signed it off, and the date, e.g. reviewed_on = 2026-12-01)")
