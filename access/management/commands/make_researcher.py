from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from access.roles import make_researcher


class Command(BaseCommand):
    help = "Give an existing account the researcher role (staff + the researchers' group)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no account {username!r}")
        make_researcher(user)
        self.stdout.write(f"{username} is a researcher.")
