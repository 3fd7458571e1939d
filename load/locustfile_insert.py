"""dialer-insert: valid generated contacts into the target's disposable campaign.

Every insert answered OK is remembered by its idcrm; afterwards `pbxcheck load` checks each one is
listed by statusdiscador (nothing lost), then deletediscador empties the disposable campaign.
Destinations (ddd1+tel1) come from ``[load] destinations``.
"""

from __future__ import annotations

from pbxuser import PbxUser


class DialerInsertUser(PbxUser):
    weights = {"insert": 1}
