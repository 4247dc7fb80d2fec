"""Every Slack action id, callback id and form block id in one place, so listeners and the
renderers that create the buttons can never drift apart."""

from enum import StrEnum


class ActionId(StrEnum):
    REASSESSED = "crs_reassessed"
    DETAILS = "crs_details"
    RESOLVED = "crs_resolved"
    SNOOZE = "crs_snooze"
    NEW_ASSESSMENT = "crs_new_assessment"
    TIMELINE = "crs_timeline"


class CallbackId(StrEnum):
    CRS_FORM = "crs_form"
    CRS_DETAILS = "crs_details"


class FormField(StrEnum):
    """Form block ids are the grammar's own keys: a form submission is turned into `/crs` text. OTHER holds
    free `key=value` text for the findings without a field of their own."""

    PATIENT = "patient"
    PRODUCT = "product"
    TEMP = "temp"
    MASKED = "masked"
    SBP = "sbp"
    PRESSOR = "pressor"
    O2 = "o2"
    DEVICE = "device"
    OTHER = "other"


class Subcommand(StrEnum):
    """Every `/crs` sub-command; bot/commands.py has one table entry for each."""

    GRADE = "grade"  # the default: `/crs temp=39 ...`
    ICANS = "icans"
    DELAY = "delay"
    PREMED = "premed"
    FORM = "form"
    STATUS = "status"
    HISTORY = "history"
    HANDOFF = "handoff"
    RESOLVE = "resolve"
    ONCALL = "oncall"
    HELP = "help"
