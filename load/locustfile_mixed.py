"""mixed: inserts, click-to-call and polling together, in the proportions of a profile file
(``load/profiles/mixed.toml`` unless ``--profile``); `pbxcheck load` passes them as --pbx-weights."""

from __future__ import annotations

from pbxuser import PbxUser


class MixedUser(PbxUser):
    weights = {"insert": 70, "clicktocall": 10, "statusramais": 15, "statusdiscador": 5}
