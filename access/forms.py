"""Forms for reader accounts: one reader, a pasted list, a reader chosen by name, a reset."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from access.invites import NewReader, email_taken

User = get_user_model()
MAX_READERS_AT_ONCE = 200


def _checked(name: str, email: str, where: str) -> NewReader:
    name, email = name.strip(), email.strip()
    if not name:
        raise ValidationError(f"{where}: give the reader's name.")
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError(f"{where}: “{email}” is not an e-mail address.") from None
    return NewReader(name=name[:300], email=email.lower())


def parse_reader_lines(text: str) -> list[NewReader]:
    """'Ada Lovelace, ada@example.org' per line; blank lines skipped, every bad line reported.

    The e-mail is the last comma-separated field, so a name may hold a comma ("Doe, Jane").
    """
    readers, errors, seen = [], [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, comma, email = line.rpartition(",")
        try:
            if not comma:
                raise ValidationError(f"Line {number}: write “name, e-mail”.")
            reader = _checked(name, email, f"Line {number}")
        except ValidationError as error:
            errors.extend(error.messages)
            continue
        if reader.email in seen:
            errors.append(f"Line {number}: {reader.email} is listed twice.")
        seen.add(reader.email)
        readers.append(reader)
    if errors:
        raise ValidationError(errors)
    return readers


def _refuse_taken(readers: list[NewReader]) -> None:
    taken = [reader.email for reader in readers if email_taken(reader.email)]
    if taken:
        raise ValidationError(f"These already have an account: {', '.join(taken)}.")


class ReaderForm(forms.Form):
    name = forms.CharField(max_length=300)
    email = forms.EmailField(label="E-mail")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("name") and data.get("email"):
            self.readers = [_checked(data["name"], data["email"], "This reader")]
            _refuse_taken(self.readers)
        return data


class ReaderListForm(forms.Form):
    lines = forms.CharField(
        label="Readers, one per line",
        widget=forms.Textarea(
            attrs={"rows": 6, "cols": 60, "placeholder": "Ada Lovelace, ada@example.org"}
        ),
        help_text="Name, e-mail. Each gets an account and an invitation link.",
    )

    def clean_lines(self) -> list[NewReader]:
        readers = parse_reader_lines(self.cleaned_data["lines"])
        if not readers:
            raise ValidationError("List at least one reader.")
        if len(readers) > MAX_READERS_AT_ONCE:
            raise ValidationError(f"At most {MAX_READERS_AT_ONCE} readers at once.")
        _refuse_taken(readers)
        self.readers = readers
        return readers


class InvitedReaderResetForm(PasswordResetForm):
    """Django's reset form, which also reaches a reader who has not used the invitation yet.

    Django skips accounts with an unusable password (often deliberately disabled ones); an
    invited reader who lost the link has one too, but has never logged in. The page answers
    the same whether or not the address exists (Django's view), so it reveals nobody.
    """

    def get_users(self, email: str) -> Iterator[Any]:
        yield from super().get_users(email)
        field = User.get_email_field_name()
        invited = User._default_manager.filter(
            **{f"{field}__iexact": email}, is_active=True, last_login__isnull=True
        )
        for user in invited:
            # Django's own check against look-alike addresses (CVE-2019-19844).
            if not user.has_usable_password() and _same_address(email, getattr(user, field)):
                yield user


def _same_address(first: str, second: str) -> bool:
    def fold(text: str) -> str:
        return unicodedata.normalize("NFKC", text).casefold()

    return fold(first) == fold(second)


def reader_label(user) -> str:
    name = user.get_full_name()
    return f"{name} <{user.email}>" if name else (user.email or user.get_username())


class ReaderNameInput(forms.TextInput):
    """A text box that completes a reader's name or e-mail from a list (HTML datalist).

    `options` is set once per form class (one query per page), not per form.
    """

    template_name = "access/widgets/reader_name.html"

    class Media:
        js = ["access/reader-field.js"]

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__({"autocomplete": "off", "size": 40, **(attrs or {})})
        self.options: list[tuple[str, str]] = []

    def get_context(self, name: str, value: Any, attrs: dict | None) -> dict:
        context = super().get_context(name, value, attrs)
        list_id = f"{context['widget']['attrs'].get('id', name)}-readers"
        context["widget"]["attrs"]["list"] = list_id
        context["widget"]["attrs"]["data-reader-list"] = ""
        context["widget"]["list_id"] = list_id
        context["widget"]["options"] = self.options
        return context


class ReaderField(forms.ModelChoiceField):
    """A reader by username (their e-mail for invited readers), typed with completion."""

    def __init__(self, queryset=None, **kwargs: Any) -> None:
        queryset = (
            queryset if queryset is not None else User._default_manager.filter(is_active=True)
        )
        kwargs.setdefault("widget", ReaderNameInput())
        kwargs.setdefault("help_text", "Type a name or e-mail and pick the reader from the list.")
        super().__init__(queryset=queryset, to_field_name=User.USERNAME_FIELD, **kwargs)
        self.error_messages["invalid_choice"] = "No active account with this username."
        users = list(queryset.order_by("is_staff", "last_name", "first_name", User.USERNAME_FIELD))
        self.widget.options = [(user.get_username(), reader_label(user)) for user in users]
        self.usernames = {user.pk: user.get_username() for user in users}

    def prepare_value(self, value: Any) -> Any:
        # A model form's initial value is the reader's pk: show their username instead.
        if isinstance(value, int) and value in self.usernames:
            return self.usernames[value]
        return super().prepare_value(value)

    def to_python(self, value: Any):
        if isinstance(value, str):
            value = value.strip()
            # A pick from the list may arrive as "Name <e-mail>" in some browsers.
            if value.endswith(">") and "<" in value:
                value = value.rsplit("<", 1)[1][:-1]
        return super().to_python(value)
