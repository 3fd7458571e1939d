"""status-polling: statusdiscador and statusramais polled the way a CRM does, while inserts run.

Of every 20 requests: 16 inserts, 3 statusramais (a screen refreshing its extensions), 1 statusdiscador
(the whole campaign listing, the expensive one).
"""

from __future__ import annotations

from pbxuser import PbxUser


class StatusPollingUser(PbxUser):
    weights = {"insert": 16, "statusramais": 3, "statusdiscador": 1}
