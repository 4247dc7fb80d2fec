"""The failures a user can cause, each with enough context for a friendly, specific reply.

The Slack layer maps every subclass of `CrsbotError` to a reply in one place; nothing else
is allowed to reach a user as a traceback.
"""

from __future__ import annotations


class CrsbotError(Exception):
    """Base for errors whose message is safe and useful to show to the person who caused them."""

    def user_message(self) -> str:
        return str(self)


class InputError(CrsbotError):
    """Something typed after `/crs` could not be understood.

    Carries the offending key, what was wrong, the accepted form and an example, because at 3 a.m.
    "invalid input" is useless: the clinician needs to see how to type it right.
    """

    def __init__(self, key: str | None, problem: str, accepted: str = "", example: str = "") -> None:
        self.key = key
        self.problem = problem
        self.accepted = accepted
        self.example = example
        super().__init__(self.user_message())

    def user_message(self) -> str:
        where = f"`{self.key}`: " if self.key else ""
        parts = [f"{where}{self.problem}"]
        if self.accepted:
            parts.append(f"Accepted: {self.accepted}")
        if self.example:
            parts.append(f"Example: `{self.example}`")
        return "\n".join(parts)


class RulebookError(CrsbotError):
    """A rulebook file is malformed; names the file and the entry so a pharmacist can fix it."""

    def __init__(self, path: str, entry: str | None, problem: str) -> None:
        self.path = path
        self.entry = entry
        self.problem = problem
        where = f"{path}" + (f", entry '{entry}'" if entry else "")
        super().__init__(f"Rulebook {where}: {problem}")


class PatientLabelError(CrsbotError):
    """A patient label looks like a name or record number; only bed or study labels are allowed."""

    def __init__(self, label: str, reason: str) -> None:
        self.label = label
        self.reason = reason
        super().__init__(
            f"`patient`: {reason} Use a bed or study label, never a name or record number.\n"
            "Accepted: letters, digits and - _ / . up to 24 characters that are not a name or MRN\n"
            "Example: `patient=bed12` or `patient=study-0042`"
        )
