"""The `/crs form` submission: graded before the ack, so errors show inline on the field; recorded and
posted after it. The middleware has opened the form's sealed channel and guarded the patient label."""

from __future__ import annotations


from slack_bolt import Ack, App, BoltContext

from bot.handlers import assess
from bot.handlers.deps import Deps
from bot.listeners.authorize import CALL
from bot.listeners.errors import form_errors
from grading.errors import InputError
from messages.ids import CallbackId


def register(app: App, deps: Deps) -> None:
    @app.view(CallbackId.CRS_FORM.value)
    def on_submit(ack: Ack, context: BoltContext) -> None:
        call = context[CALL]
        try:
            case = assess.grade(deps, call)
        except InputError as exc:
            ack(**form_errors(exc))
            return
        ack()
        assess.publish_crs(deps, call, case)
