"""parse -> grade -> decide, for each `/crs` sub-command: the one path from typed text to a decision.

The edges (Slack listeners, console, CLI) call only this. What needs the database (the patient's open
episode and earlier episodes) is looked up by the caller and passed in as `PatientHistory` data, so this
stays pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from grading.crs import grade_crs
from grading.decide import basis_grade, decide_crs, decide_delay, decide_icans, decide_premed
from grading.errors import InputError
from grading.models import CrsReport, DelayReport, IcansReport, PremedReport, Product, SiteSettings
from grading.parse import PATIENT_KEYS, parse_crs, parse_delay, parse_icans, parse_premed, read_patient, tokenize
from grading.rulebook import Rulebook

Rulebooks = Mapping[Product, Rulebook]


@dataclass(frozen=True)
class PriorEpisode:
    """A resolved episode of the patient: `ref` is the caller's id for it, returned untouched."""

    ref: int
    worst_grade: int | None


@dataclass(frozen=True)
class PatientHistory:
    """What the caller's records say about the patient named in the text."""

    open_product: Product | None = None
    last_resolved: Mapping[Product, PriorEpisode] = field(default_factory=dict)


NO_HISTORY = PatientHistory()


@dataclass(frozen=True)
class CrsAssessment:
    report: CrsReport
    product: Product
    rulebook: Rulebook
    basis: int  # the grade reminders and recurrence follow
    recurrent_of: int | None  # `ref` of the prior episode this one recurs after


@dataclass(frozen=True)
class IcansAssessment:
    report: IcansReport
    product: Product
    rulebook: Rulebook


class ProductConflictError(InputError):
    """`product=` names another product than the patient's open episode, which keeps its product."""

    def __init__(self, typed: Product, episode: Product) -> None:
        self.typed, self.episode = typed, episode
        super().__init__("product", f"this patient's open episode is {episode.upper()}, not {typed.upper()}; an "
                         "episode keeps its product. Leave `product=` out, or resolve the episode first.",
                         f"product={episode} (or no product=)", f"/crs temp=38.2 patient=bed12 product={episode}")


def patient_named(text: str) -> str | None:
    """The patient label in `/crs` text, if one is readable: enough to look up history and authorize
    before the full parse (which reports any error in the rest)."""
    try:
        tokens = tokenize(text)
    except InputError:
        return None
    for token in tokens:
        if token.key in PATIENT_KEYS:
            try:
                return read_patient(token.key, token.value)
            except InputError:
                return None
    return None


def episode_product(typed: Product | None, history: PatientHistory, site: SiteSettings) -> Product:
    """An open episode keeps its product; otherwise what was typed, else the site default."""
    if history.open_product is None:
        return typed or site.product
    if typed is not None and typed != history.open_product:
        raise ProductConflictError(typed, history.open_product)
    return history.open_product


def assess_crs_case(text: str, site: SiteSettings, rulebooks: Rulebooks, history: PatientHistory = NO_HISTORY,
                    known_recurrent: bool = False) -> CrsAssessment:
    """The grade is recurrent when the patient's last resolved episode with this product reached this same
    grade; `recurrent=yes` (or `known_recurrent`) covers patients the caller has no record of."""
    inp = parse_crs(text)
    product = episode_product(inp.product, history, site)
    rulebook = rulebooks[product]
    graded = grade_crs(inp, site)
    basis = basis_grade(graded)
    prior = history.last_resolved.get(product)
    recurrent_of = prior.ref if prior is not None and basis >= 1 and prior.worst_grade == basis else None
    recurrent = bool(inp.recurrent) or known_recurrent or recurrent_of is not None
    return CrsAssessment(decide_crs(inp, graded, rulebook, recurrent), product, rulebook, basis, recurrent_of)


def assess_icans_case(text: str, site: SiteSettings, rulebooks: Rulebooks,
                      history: PatientHistory = NO_HISTORY) -> IcansAssessment:
    inp = parse_icans(text)
    product = episode_product(inp.product, history, site)
    rulebook = rulebooks[product]
    return IcansAssessment(decide_icans(inp, rulebook), product, rulebook)


def assess_crs(text: str, settings: SiteSettings, rulebooks: Rulebooks,
               known_recurrent: bool = False) -> CrsReport:
    """The report alone, for callers without records (CLI, tests)."""
    return assess_crs_case(text, settings, rulebooks, known_recurrent=known_recurrent).report


def assess_icans(text: str, settings: SiteSettings, rulebooks: Rulebooks) -> IcansReport:
    return assess_icans_case(text, settings, rulebooks).report


def assess_delay(text: str, settings: SiteSettings, rulebooks: Rulebooks) -> DelayReport:
    inp = parse_delay(text)
    return decide_delay(inp, rulebooks[inp.product or settings.product])


def assess_premed(text: str, settings: SiteSettings, rulebooks: Rulebooks) -> PremedReport:
    inp = parse_premed(text)
    return decide_premed(inp, rulebooks[inp.product or settings.product])
