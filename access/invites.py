"""Reader accounts that researchers create, and the one-time link that lets a reader in.

An invitation is Django's password-reset token (`default_token_generator`): it is bound to the
account's password hash and last login, so it stops working once the reader has set a
password, and after PASSWORD_RESET_TIMEOUT. A new account has an unusable password until then.

With an SMTP server configured (EMAIL_HOST) the link goes by e-mail only; without one it is
shown to the researcher to pass on (the message still goes through EMAIL_BACKEND, the console
or a file in development), because a link the researcher can see lets them set the password.
That is acceptable only for an account nobody uses yet: for a reader who has set a password the
link would let the researcher take the account over, so it goes by e-mail or not at all.

A batch of invitations shares one mail connection (a list of 200 readers is one SMTP session,
not 200); once that connection fails, the rest are not tried and their links are shown.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import get_connection, send_mail
from django.core.mail.backends.base import BaseEmailBackend
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
    # The reader has a password already: the link is never shown, only e-mailed.
    password_set: bool = False

    @property
    def shown_link(self) -> str:
        """The link for the researcher's page: empty when it went out by e-mail, and always
        empty for an account with a password (seeing it would let the researcher take it over)."""
        return "" if self.emailed or self.password_set else self.link


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


class _Mailer:
    """One mail connection for a batch of invitations. After it fails once it stops trying:
    with a dead server every further reader would wait EMAIL_TIMEOUT_S again in the request."""

    def __init__(self) -> None:
        self.connection: BaseEmailBackend = get_connection()
        self.broken = False

    def send(self, user, subject: str, body: str) -> bool:
        if self.broken:
            return False
        try:
            # Opened once here: send_mail then leaves it open for the next reader.
            self.connection.open()
            send_mail(subject, body, None, [user.email], connection=self.connection)
        except smtplib.SMTPRecipientsRefused:
            # This address only: the connection still works for the others.
            logger.exception("the mail server refused the address of user %s", user.pk)
            return False
        except (OSError, smtplib.SMTPException):
            logger.exception("could not e-mail the invitation of user %s", user.pk)
            self.broken = True
            return False
        return True

    def close(self) -> None:
        try:
            self.connection.close()
        except (OSError, smtplib.SMTPException):
            # The mails were accepted already; a failed QUIT changes nothing for them.
            logger.warning("could not close the mail connection", exc_info=True)


def invite_all(request: HttpRequest, users) -> list[Invitation]:
    """Invitations for `users`, their mails over one connection."""
    mailer = _Mailer()
    try:
        return [_invite(request, user, mailer) for user in users]
    finally:
        mailer.close()


def _invite(request: HttpRequest, user, mailer: _Mailer) -> Invitation:
    """A fresh invitation link; links given before stop working if no password was set yet."""
    password_set = user.has_usable_password()
    if password_set and not (delivers_email() and user.email):
        # Without a mail server the link could only be shown, and that would hand the
        # researcher the account: no link is made; the reader uses "Forgot your password?".
        return Invitation(user=user, link="", emailed=False, password_set=True)
    if not password_set:
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
    body = render_to_string("access/invite_email.txt", context)
    if not mailer.send(user, "Your reader account for Spot the fake", body):
        # The researcher still gets the link to pass on (unless the reader has a password);
        # the log says why the mail failed.
        return Invitation(
            user=user, link=link, emailed=False, mail_failed=True, password_set=password_set
        )
    return Invitation(user=user, link=link, emailed=delivers_email(), password_set=password_set)
