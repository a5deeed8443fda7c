from django.urls import path

from pool import views

# Staff only: readers never get an image's public id, so these URLs never reach them.
urlpatterns = [
    path(
        "staff/images/<str:public_id>/display.png", views.image_display, name="staff-image-display"
    ),
    path("staff/import/", views.import_images, name="staff-import-images"),
]
