from typing import ClassVar

from django.conf import settings
from django.db import models


class Notification(models.Model):
    """One message to one person, kept in both languages as written by the sender.

    Stored in zh-hans and en at creation (the sender's lazy strings rendered twice) so the page
    shows the reader's language without the sender's code being asked again later.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=40, blank=True)
    title_zh = models.CharField(max_length=200)
    title_en = models.CharField(max_length=200)
    body_zh = models.TextField(blank=True)
    body_en = models.TextField(blank=True)
    # a path inside the shell ("/credentialing/applications/3/"): never an outside address
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes: ClassVar = [
            models.Index(fields=("recipient", "read_at"), name="notif_recipient_unread")
        ]

    def __str__(self) -> str:
        return f"{self.recipient_id}: {self.title_en}"
