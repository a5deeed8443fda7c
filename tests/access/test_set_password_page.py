"""The set-password page states the rules the password validators actually apply."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import password_validators_help_texts
from django.contrib.auth.tokens import default_token_generator
from django.utils.encoding import force_bytes
from django.utils.html import escape
from django.utils.http import urlsafe_base64_encode

from access.invites import NewReader, create_reader

pytestmark = pytest.mark.django_db

User = get_user_model()


def test_it_shows_the_configured_validators_rules(client):
    reader = create_reader(NewReader(name="Ada Lovelace", email="ada@example.org"))
    uid = urlsafe_base64_encode(force_bytes(reader.pk))
    token = default_token_generator.make_token(reader)
    page = client.get(f"/accounts/reset/{uid}/{token}/", follow=True).content.decode()
    assert "Set your password" in page
    for rule in password_validators_help_texts():
        assert escape(rule) in page
    # The old hard-coded hint named a rule no configured validator checks.
    assert "not only digits" not in page
