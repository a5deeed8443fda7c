"""The one exception type the imaging package lets escape for bad input."""


class ImageImportError(Exception):
    """An uploaded file cannot be imported.

    ``str(error)`` is a single line meant for the person who uploaded the file
    ("truncated or corrupt PNG", "DICOM has no pixel data", ...). It never
    contains a traceback; it does not quote header values from the file (pixel
    decoder messages, which are about lengths and codecs, may be appended).
    """

    def __init__(self, reason: str) -> None:
        # Keep the message on one line whatever the underlying library said.
        super().__init__(" ".join(str(reason).split()))
