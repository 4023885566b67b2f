"""The account mails, each in plain text and simple HTML; links point at EVENTPLANE_PUBLIC_URL."""

from __future__ import annotations

from html import escape

from eventplane.mail import Mail
from eventplane.settings import Settings


def _mail(to: str, subject: str, lead: str, link: str, tail: str) -> Mail:
    text = f"{lead}\n\n{link}\n\n{tail}\n"
    html = (f"<!doctype html><html><body><p>{escape(lead)}</p>"
            f'<p><a href="{escape(link)}">{escape(link)}</a></p><p>{escape(tail)}</p></body></html>')  # fmt: skip
    return Mail(to, subject, text, html)


def _hours(seconds: int) -> str:
    return f"{seconds // 3600} hours" if seconds >= 7200 else f"{max(seconds // 60, 1)} minutes"


def verify_email(s: Settings, to: str, token: str) -> Mail:
    return _mail(to, "Verify your email address", "Confirm that this address is yours by opening this link:",
                 f"{s.public_url}/verify-email?token={token}",
                 f"It works for {_hours(s.verify_token_ttl)}. If you did not sign up, ignore this mail.")  # fmt: skip


def reset_password(s: Settings, to: str, token: str) -> Mail:
    return _mail(to, "Reset your password", "Someone asked to reset the password of this account. "
                 "To choose a new one, open this link:", f"{s.public_url}/reset-password?token={token}",
                 f"It works once, for {_hours(s.reset_token_ttl)}. If it was not you, ignore this mail; "
                 "your password stays as it is.")  # fmt: skip


def change_email(s: Settings, to: str, token: str) -> Mail:
    return _mail(to, "Confirm your new email address", "To make this the address of your EventPlane account, "
                 "open this link:", f"{s.public_url}/confirm-email?token={token}",
                 f"It works for {_hours(s.verify_token_ttl)}. If it was not you, ignore this mail.")  # fmt: skip


def invitation(s: Settings, to: str, token: str, workspace: str, inviter: str, role: str) -> Mail:
    return _mail(to, f"{inviter} invited you to {workspace} on EventPlane",
                 f"{inviter} invited you to join the workspace {workspace} as {role}. To accept, sign up or log "
                 "in with this address and open this link:", f"{s.public_url}/invitations/accept?token={token}",
                 f"The invitation expires in {_hours(s.invitation_ttl)}.")  # fmt: skip
