from datetime import datetime

from ninja import Schema


class ViewerTokenOut(Schema):
    """A relay token for one room; open <url>/streams/<stream>/<quality>?token=<token>."""

    token: str
    url: str
    expires_at: datetime
