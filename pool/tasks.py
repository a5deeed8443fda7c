from django.core.files.base import ContentFile

from pool.imaging import read_image
from pool.models import Image
from pool.storing import decode_limits, display_png
from spotthefake.celery import project_task


@project_task()
def rebuild_display(*, image_pk: int) -> None:
    """Re-derive an image's display PNG from its stored original (after IMAGE_DISPLAY_SIZE changes).

    Pre: the image exists and its original is readable. Post: the display file has the
    configured size; running it twice gives the same bytes (the derivative is deterministic).
    """
    image = Image.objects.filter(pk=image_pk).first()
    if image is None:
        return
    with image.original.open("rb") as handle:
        data = handle.read()
    decoded = read_image(
        data,
        name=image.original.name,
        **decode_limits(),
        # Only DICOM has frames; a PNG/JPEG has frame 0 and takes no range.
        frames=(image.frame_index,) * 2 if image.original_format == "dicom" else None,
    )
    png = display_png(decoded.frames[0].pixels)
    old_name = image.display.name
    image.display.save("display.png", ContentFile(png), save=False)
    Image.objects.filter(pk=image.pk).update(display=image.display.name)
    if old_name and old_name != image.display.name:
        image.display.storage.delete(old_name)

