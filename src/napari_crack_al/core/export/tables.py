"""The tables of a mask export: manifest.csv, measurements.csv and measurements_summary.csv.

Their file names, their columns (see ``docs/export.md``) and the rows of the two
measurement tables; every table is written atomically with formula-safe cells
(:func:`~napari_crack_al.core.export.csv_util.write_csv`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .csv_util import write_csv
from .measurements import ORIENTATIONS, CrackMeasurement, ImageCrackSummary

__all__ = ["MANIFEST_NAME", "MEASUREMENTS_NAME", "SUMMARY_NAME", "MANIFEST_COLUMNS",
           "MEASUREMENT_COLUMNS", "SUMMARY_COLUMNS", "measurement_rows", "summary_row",
           "write_tables"]

MANIFEST_NAME = "manifest.csv"
MEASUREMENTS_NAME = "measurements.csv"
SUMMARY_NAME = "measurements_summary.csv"

MANIFEST_COLUMNS = ("image", "mask", "source", "status", "suggestion_model_version",
                    "edit_fraction", "annotation_seconds", "height", "width", "crack_pixels")
MEASUREMENT_COLUMNS = ("image", "source", "crack", "area_px", "length_px", "mean_width_px",
                       "max_width_px", "n_segments", "n_branch_points", "n_cycles", "orientation",
                       "angle_deg", "bbox_min_row", "bbox_min_col", "bbox_max_row", "bbox_max_col",
                       "area_mm2", "length_mm", "mean_width_mm", "max_width_mm")
SUMMARY_COLUMNS = ("image", "source", "height", "width", "n_cracks", "total_area_px",
                   "crack_area_fraction", "total_length_px", "mean_width_px", "max_width_px",
                   *(f"n_{o}" for o in ORIENTATIONS),
                   "pixel_size_mm", "total_length_mm", "mean_width_mm", "max_width_mm")


def measurement_rows(image: str, source: str,
                     cracks: Sequence[CrackMeasurement]) -> list[dict[str, Any]]:
    """Rows of ``measurements.csv`` for the cracks of one image."""
    rows = []
    for m in cracks:
        row: dict[str, Any] = {"image": image, "source": source, "crack": m.label}
        for col in MEASUREMENT_COLUMNS[3:]:
            if col.startswith("bbox_"):
                continue
            row[col] = getattr(m, col)
        row.update(bbox_min_row=m.bbox[0], bbox_min_col=m.bbox[1], bbox_max_row=m.bbox[2],
                   bbox_max_col=m.bbox[3])
        rows.append(row)
    return rows


def summary_row(image: str, source: str, shape: tuple[int, int], summary: ImageCrackSummary,
                pixel_size_mm: float | None) -> dict[str, Any]:
    """The row of ``measurements_summary.csv`` for one image."""
    row = {"image": image, "source": source, "height": shape[0], "width": shape[1],
           "n_cracks": summary.n_cracks, "total_area_px": summary.total_area_px,
           "crack_area_fraction": summary.crack_area_fraction,
           "total_length_px": summary.total_length_px,
           "mean_width_px": summary.mean_width_px, "max_width_px": summary.max_width_px,
           "pixel_size_mm": pixel_size_mm, "total_length_mm": summary.total_length_mm,
           "mean_width_mm": summary.mean_width_mm, "max_width_mm": summary.max_width_mm}
    row.update({f"n_{k}": v for k, v in summary.counts.items()})
    return row


def write_tables(tables: Sequence[Path], manifest: list[dict[str, Any]],
                  crack_rows: list[dict[str, Any]], summary_rows: list[dict[str, Any]],
                  measure: bool) -> tuple[Path | None, Path | None]:
    """Write ``manifest.csv`` and, when measured, the two measurement tables.

    Parameters
    ----------
    tables : sequence of Path
        ``[manifest, measurements, summary]`` (the manifest only without ``measure``).
    manifest, crack_rows, summary_rows : list of dict
        The rows of the three tables.
    measure : bool
        Write the measurement tables.

    Returns
    -------
    tuple
        The measurement and summary table paths (None when not measured).
    """
    write_csv(tables[0], manifest, MANIFEST_COLUMNS)
    measurements_path = summary_path = None
    if measure:
        measurements_path = write_csv(tables[1], crack_rows, MEASUREMENT_COLUMNS)
        summary_path = write_csv(tables[2], summary_rows, SUMMARY_COLUMNS)
    return measurements_path, summary_path
