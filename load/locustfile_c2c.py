"""click-to-call: clicktocall from the target's extensions to numbers of ``[load] destinations`` only."""

from __future__ import annotations

from pbxuser import PbxUser


class ClickToCallUser(PbxUser):
    weights = {"clicktocall": 1}
