"""Every Slack action id, callback id and form block id in one place, so listeners and the
renderers that create the buttons can never drift apart."""

from enum import StrEnum


class ActionId(StrEnum):
    REASSESSED = "crs_reassessed"
    RESOLVED = "crs_resolved"
    SNOOZE = "crs_snooze"
    NEW_ASSESSMENT = "crs_new_assessment"


class CallbackId(StrEnum):
    CRS_FORM = "crs_form"


class FormField(StrEnum):
    """Form block ids are the grammar's own keys: a form submission is turned into `/crs` text."""

    PATIENT = "patient"
    PRODUCT = "product"
    TEMP = "temp"
    MASKED = "masked"
    SBP = "sbp"
    FLUIDS = "fluids"
    PRESSOR = "pressor"
    VASOPRESSIN = "vasopressin"
    O2 = "o2"
    DEVICE = "device"
    WEIGHT = "weight"
    RECURRENT = "recurrent"


class Subcommand(StrEnum):
    """Every `/crs` sub-command; bot/commands.py has one table entry for each."""

    GRADE = "grade"  # the default: `/crs temp=39 ...`
    ICANS = "icans"
    DELAY = "delay"
    PREMED = "premed"
    FORM = "form"
    STATUS = "status"
    HISTORY = "history"
    RESOLVE = "resolve"
    ONCALL = "oncall"
    HELP = "help"
