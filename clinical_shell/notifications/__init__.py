"""In-app notifications (unread counts, live badge) and their e-mail copies over SMTP."""
