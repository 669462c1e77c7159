"""Pictures a person would rather look at than read: montages of views."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .atomic import atomic_savefig  # noqa: E402
from .images import write_image  # noqa: E402


def save_montage(images: Sequence[np.ndarray | None], titles: Sequence[str], path: str | Path,
                 suptitle: str = "", marks: Sequence[Sequence[tuple[float, float, float]]] = (),
                 columns: int = 4) -> Path:
    """A grid of grayscale images; ``marks`` draws circles (x, y, r) on each, e.g. aneurysms."""
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.4 * rows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= len(images):
            continue
        if images[k] is None:
            ax.text(0.5, 0.5, "absent", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.imshow(images[k], cmap="gray", vmin=0, vmax=255)
            for x, y, r in (marks[k] if k < len(marks) else ()):
                ax.add_patch(plt.Circle((x, y), max(r * 2.0, 6.0), fill=False, color="red", lw=1))
        ax.set_title(titles[k], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=75)
    plt.close(fig)
    return Path(path)


def save_overlay_montage(images: Sequence[np.ndarray | None], maps: Sequence[np.ndarray | None],
                         captions: Sequence[str], title: str, path: str | Path,
                         columns: int = 4, tile: int = 256,
                         boxes: Sequence[Sequence[tuple[float, float, float, float]]] | None = None,
                         ) -> Path:
    """Views with a probability map overlaid (transparent where low, hot where high), a caption
    under each and a title on top. Drawn with PIL, so a montage per patient stays cheap.

    ``boxes``: per view, squares (x, y, side, score), in fractions of the view, drawn with their
    score (the second look's crops): cyan, or red where the score is 0.5 or more."""
    from PIL import Image, ImageDraw, ImageFont

    colormap = matplotlib.colormaps["inferno"]
    font = ImageFont.load_default(size=max(tile // 18, 10))
    caption_h, title_h = tile // 9, tile // 7
    rows = -(-len(images) // columns)
    canvas = Image.new("RGB", (columns * tile, title_h + rows * (tile + caption_h)), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((6, title_h // 4), title, fill="black", font=font)
    for k, (image, heat, caption) in enumerate(zip(images, maps, captions)):
        x, y = (k % columns) * tile, title_h + (k // columns) * (tile + caption_h)
        if image is None:
            draw.text((x + tile // 3, y + tile // 2), "absent", fill="grey", font=font)
        else:
            rgb = np.repeat(np.asarray(Image.fromarray(image).resize((tile, tile)),
                                       dtype=np.float32)[..., None], 3, axis=2) / 255.0
            if heat is not None:
                h = np.asarray(Image.fromarray(heat.astype(np.float32)).resize(
                    (tile, tile), Image.Resampling.BILINEAR), dtype=np.float32).clip(0, 1)
                alpha = (0.85 * h)[..., None]
                rgb = (1 - alpha) * rgb + alpha * colormap(h)[..., :3]
            canvas.paste(Image.fromarray((rgb * 255).round().astype(np.uint8)), (x, y))
            for bx, by, side, score in (boxes[k] if boxes else ()):
                half = side * tile / 2
                cx, cy = x + bx * tile, y + by * tile
                colour = "red" if score >= 0.5 else "cyan"
                draw.rectangle([cx - half, cy - half, cx + half, cy + half], outline=colour)
                draw.text((cx - half + 1, cy - half - tile // 18), f"{score:.2f}", fill=colour,
                          font=font)
        draw.text((x + 4, y + tile + 2), caption, fill="black", font=font)
    return write_image(path, canvas)
