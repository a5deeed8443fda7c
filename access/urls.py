"""Accounts: log in and out, password reset for everyone, the researchers' reader pages.

The reset views are Django's own: the reset page answers the same whether an address has an
account or not, and the link is the same one-time token an invitation carries.
"""

from django.contrib.auth import views as auth_views
from django.urls import path

from access import views
from access.forms import InvitedReaderResetForm

urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password_reset/",
        auth_views.PasswordResetView.as_view(form_class=InvitedReaderResetForm),
        name="password_reset",
    ),
    path(
        "accounts/password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("staff/readers/", views.readers, name="staff-readers"),
    path("staff/readers/<int:pk>/invite/", views.reader_invite, name="staff-reader-invite"),
]
