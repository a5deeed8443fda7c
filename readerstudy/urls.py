from django.urls import path

from readerstudy.views import reading, staff

urlpatterns = [
    path("", reading.home, name="home"),
    path("staff/images/<str:public_id>/display.png", staff.image_display, name="staff-image-display"),
    path("staff/import/", staff.import_images, name="staff-import-images"),
]
