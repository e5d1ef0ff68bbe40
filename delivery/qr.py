"""QR codes of a link (segno): an SVG for pages and JSON answers, a PNG for everything else."""

import base64
import io

import segno

ERROR_LEVEL = "m"  # survives some damage of a printed or photographed code


def _qr(link: str) -> segno.QRCode:
    return segno.make_qr(link, error=ERROR_LEVEL, boost_error=False)


def qr_svg(link: str, *, scale: int = 4) -> str:
    """A standalone SVG document (no XML declaration) of the link's QR code."""
    buffer = io.BytesIO()
    _qr(link).save(
        buffer, kind="svg", xmldecl=False, svgns=True, nl=False, scale=scale, title="QR code"
    )
    return buffer.getvalue().decode()


def qr_png(link: str, *, scale: int = 6) -> bytes:
    """The link's QR code as PNG bytes."""
    buffer = io.BytesIO()
    _qr(link).save(buffer, kind="png", scale=scale)
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()
