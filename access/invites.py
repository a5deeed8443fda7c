"""Reader accounts that researchers create, and the one-time link that lets a reader in.

An invitation is Django's password-reset token (`default_token_generator`): it is bound to the
account's password hash and last login, so it stops working once the reader has set a
password, and after PASSWORD_RESET_TIMEOUT. A new account has an unusable password until then.

With an SMTP server configured (EMAIL_HOST) the link goes by e-mail only; without one it is
shown to the researcher to pass on (the message still goes through EMAIL_BACKEND, the console
or a file in development), because a link the researcher can see lets them set the password.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

User = get_user_model()
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewReader:
    name: str
    email: str


@dataclass(frozen=True)
class Invitation:
    user: object
    link: str
    emailed: bool
    mail_failed: bool = False

    @property
    def shown_link(self) -> str:
        """The link for the researcher's page: empty when it went out by e-mail."""
        return "" if self.emailed else self.link


def delivers_email() -> bool:
    """True when invitations reach readers by e-mail (an SMTP server is configured)."""
    return bool(settings.EMAIL_HOST)


def valid_days() -> int:
    return max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)


def email_taken(email: str) -> bool:
    return (
        User.objects.filter(email__iexact=email).exists()
        or User.objects.filter(username__iexact=email).exists()
    )


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().rpartition(" ")
    return (first, last) if first else (last, "")


@transaction.atomic
def create_reader(new: NewReader):
    """A reader account (not staff) that can log in once it has set its password.

    The e-mail is the username: readers log in with what they were invited at.
    """
    first, last = _split_name(new.name)
    user = User(username=new.email.lower(), email=new.email.lower())
    user.first_name, user.last_name = first[:150], last[:150]
    user.set_unusable_password()
    user.save()
    return user


def link_for(request: HttpRequest, user) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    return request.build_absolute_uri(path)


def invite(request: HttpRequest, user) -> Invitation:
    """A fresh invitation link; links given before stop working if no password was set yet."""
    if not user.has_usable_password():
        # A new unusable password changes the token's hash: an earlier link is void.
        user.set_unusable_password()
        user.save(update_fields=["password"])
    link = link_for(request, user)
    if not user.email:
        return Invitation(user=user, link=link, emailed=False)
    context = {
        "user": user,
        "link": link,
        "inviter": request.user,
        "valid_days": valid_days(),
    }
    try:
        send_mail(
            "Your reader account for Spot the fake",
            render_to_string("access/invite_email.txt", context),
            None,
            [user.email],
        )
    except (OSError, smtplib.SMTPException):
        # The researcher still gets the link to pass on; the log says why the mail failed.
        logger.exception("could not e-mail the invitation of user %s", user.pk)
        return Invitation(user=user, link=link, emailed=False, mail_failed=True)
    return Invitation(user=user, link=link, emailed=delivers_email())
