"""The `/crs help` guide: short enough to read on a phone, with examples to copy."""

from __future__ import annotations

from typing import Any

from messages.blocks import render_ephemeral
from messages.layout import JUDGMENT

HELP = f"""Grade CRS (ASTCT 2019) and see what the LUNSUMIO rulebook says. Type findings as key=value:
• `/crs temp=39 sbp=85 pressor=1 patient=bed12` — fever + one vasopressor
• `/crs temp=38.4 o2=4 device=nc` — nasal cannula 4 L/min
• `/crs temp=37.2 masked=yes pressor=1` — fever masked by premedication/tocilizumab/steroids
• keys: temp, sbp (or bp=85/50), fluids, pressor (count, not vasopressin), vasopressin, o2 (L/min or device), device (ra nc blowby hfnc facemask nrb venturi cpap bipap vent), o2comfort=yes (oxygen for comfort only: not counted), masked, product (iv/velo), patient (bed or study label only), weight (kg), o2rule (label/astct), recurrent
Other commands:
• `/crs form` — the same as a form
• `/crs icans ice=6 loc=voice` — ICANS grade
• `/crs delay last=c1d8 since=3w` — restarting after a dose delay
• `/crs premed cycle=3 priorcrs=yes` — premedication
• `/crs status` · `/crs history patient=bed12` · `/crs resolve patient=bed12` · `/crs oncall @user`
Findings you leave out are never assumed present; the reply lists them. {JUDGMENT}"""


def help_message() -> dict[str, Any]:
    return render_ephemeral("crsbot: how to use /crs", HELP)
