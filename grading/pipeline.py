"""parse -> grade -> decide, for each `/crs` sub-command. The one entry point the edges call."""

from __future__ import annotations

from collections.abc import Mapping

from grading.crs import grade_crs
from grading.decide import decide_crs, decide_delay, decide_icans, decide_premed
from grading.models import CrsReport, DelayReport, IcansReport, PremedReport, Product, SiteSettings
from grading.parse import parse_crs, parse_delay, parse_icans, parse_premed
from grading.rulebook import Rulebook

Rulebooks = Mapping[Product, Rulebook]


def assess_crs(text: str, settings: SiteSettings, rulebooks: Rulebooks,
               known_recurrent: bool = False) -> CrsReport:
    """`known_recurrent` comes from the episode history; `recurrent=yes` covers unseen patients."""
    inp = parse_crs(text)
    graded = grade_crs(inp, settings)
    rulebook = rulebooks[inp.product or settings.product]
    return decide_crs(inp, graded, rulebook, recurrent=bool(inp.recurrent) or known_recurrent)


def assess_icans(text: str, settings: SiteSettings, rulebooks: Rulebooks) -> IcansReport:
    inp = parse_icans(text)
    return decide_icans(inp, rulebooks[inp.product or settings.product])


def assess_delay(text: str, settings: SiteSettings, rulebooks: Rulebooks) -> DelayReport:
    inp = parse_delay(text)
    return decide_delay(inp, rulebooks[inp.product or settings.product])


def assess_premed(text: str, settings: SiteSettings, rulebooks: Rulebooks) -> PremedReport:
    inp = parse_premed(text)
    return decide_premed(inp, rulebooks[inp.product or settings.product])
