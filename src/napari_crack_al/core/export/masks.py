"""Export a project's masks (and their crack measurements) to a plain folder.

``OUT/NAME.png`` (or ``.tif``) per image, named after the image, plus three tables:
``manifest.csv`` (one row per mask), ``measurements.csv`` (one row per crack) and
``measurements_summary.csv`` (one row per image); see ``docs/export.md``.

Safety rules: every target is checked before anything is written. Existing files
are only replaced with ``force=True`` (otherwise the export refuses, naming them),
a target that would land outside the output folder (odd names, symbolic links) is
refused, and an output folder that cannot be written is reported by name. Every
file is written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ExportError, InputError
from ..events import Outcome, ProgressEvent
from ..io.mask_io import write_mask
from .measurements import check_pixel_size, measure_cracks, summarize_image
from .tables import (
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    MEASUREMENT_COLUMNS,
    MEASUREMENTS_NAME,
    SUMMARY_COLUMNS,
    SUMMARY_NAME,
    measurement_rows,
    summary_row,
    write_tables,
)
from .targets import named_paths, prepare_folder, refuse_project_folders, safe_target

__all__ = [
    "MANIFEST_NAME",
    "MEASUREMENTS_NAME",
    "SUMMARY_NAME",
    "MANIFEST_COLUMNS",
    "MEASUREMENT_COLUMNS",
    "SUMMARY_COLUMNS",
    "EXPORT_FORMATS",
    "EXPORT_VALUES",
    "EXPORT_INCLUDE",
    "MaskExportConfig",
    "ExportResult",
    "export_masks",
    "iter_export_masks",
    "measurement_rows",
    "summary_row",
]

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("png", "tif")
EXPORT_VALUES = (255, 1)
EXPORT_INCLUDE = ("annotated", "annotated+suggested")

@dataclass(frozen=True)
class MaskExportConfig:
    """Options of a mask export (validated on creation).

    Attributes
    ----------
    fmt : {"png", "tif"}
        File format of the masks (``"tiff"`` is accepted as ``"tif"``).
    values : {255, 1}
        Pixel value of crack (background is 0).
    include : {"annotated", "annotated+suggested"}
        Accepted masks only, or also what the annotator sees on the images not yet
        annotated (nor skipped): their draft where there is one, else their suggestion.
    measure : bool
        Write the crack measurement tables.
    min_area : int
        Smallest crack measured, in pixels.
    """

    fmt: str = "png"
    values: int = 255
    include: str = "annotated"
    measure: bool = True
    min_area: int = 5

    def __post_init__(self) -> None:
        fmt = str(self.fmt).lower()
        fmt = "tif" if fmt == "tiff" else fmt
        if fmt not in EXPORT_FORMATS:
            raise ConfigError(f"export format must be one of {', '.join(EXPORT_FORMATS)}; "
                              f"got {self.fmt!r}")
        object.__setattr__(self, "fmt", fmt)
        if isinstance(self.values, bool) or self.values not in EXPORT_VALUES:
            raise ConfigError(f"mask values must be one of {', '.join(map(str, EXPORT_VALUES))}; "
                              f"got {self.values!r}")
        if self.include not in EXPORT_INCLUDE:
            raise ConfigError(f"include must be one of {', '.join(EXPORT_INCLUDE)}; "
                              f"got {self.include!r}")
        if not isinstance(self.min_area, int) or self.min_area < 0:
            raise ConfigError(f"min_area must be an integer >= 0; got {self.min_area!r}")

    @property
    def suffix(self) -> str:
        """File suffix of the masks (``.png`` or ``.tif``)."""
        return f".{self.fmt}"


@dataclass(frozen=True)
class ExportResult:
    """What a mask export wrote.

    Attributes
    ----------
    out_dir : Path
        The output folder.
    masks : tuple of Path
        Mask files, in project queue order.
    manifest : Path
        ``manifest.csv``.
    measurements, summary : Path or None
        ``measurements.csv`` and ``measurements_summary.csv`` (None when not measured).
    n_annotated, n_suggested, n_drafts : int
        Masks taken from accepted annotations, from model suggestions and from drafts
        (unaccepted corrections).
    n_cracks : int
        Cracks measured over all masks (0 when not measured).
    overwritten : tuple of Path
        Files that existed before and were replaced (only with ``force``).
    pixel_size_mm : float or None
        Pixel size used for the millimetre columns.
    """

    out_dir: Path
    masks: tuple[Path, ...]
    manifest: Path
    measurements: Path | None
    summary: Path | None
    n_annotated: int
    n_suggested: int
    n_cracks: int
    overwritten: tuple[Path, ...]
    pixel_size_mm: float | None
    n_drafts: int = 0

    @property
    def n_masks(self) -> int:
        """Number of mask files written."""
        return len(self.masks)

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every file written (masks, then the tables)."""
        tables = (self.manifest, self.measurements, self.summary)
        return self.masks + tuple(p for p in tables if p is not None)


@dataclass(frozen=True)
class _Item:
    record: Any
    source: str  # "annotation" | "draft" | "suggestion"
    src_path: Path
    target: Path


def _version_of(project: Any, item: _Item) -> str | None:
    """The model version a mask comes from: the annotation's or the draft's starting
    suggestion, or the suggestion file's."""
    rec = item.record
    if item.source == "suggestion":
        return rec.suggestion_file_version or rec.suggestion_model_version
    if item.source == "draft":  # the version only: the base mask is not read
        version = project.draft_base_version(rec.name)
        return rec.suggestion_file_version if version is None else (version or None)
    return rec.suggestion_model_version


def _plan(project: Any, out_dir: Path, resolved_out: Path, config: MaskExportConfig) -> list[_Item]:
    items: list[_Item] = []
    missing: list[Path] = []
    for rec in project.records():
        status = getattr(rec.status, "value", rec.status)
        if status not in ("annotated", "suggested", "new"):
            continue
        # the target is checked first: a name escaping the output folder is an export error
        target = safe_target(out_dir, resolved_out, f"{rec.name}{config.suffix}")
        if status == "annotated":
            source, src = "annotation", project.annotation_path(rec.name, check=False)
        elif config.include == "annotated+suggested" and project.has_draft(rec.name):
            source, src = "draft", project.draft_path(rec.name, check=False)
        elif status == "suggested" and config.include == "annotated+suggested":
            source, src = "suggestion", project.suggestion_path(rec.name, check=False)
        else:
            continue
        if not src.is_file():
            missing.append(src)
        items.append(_Item(rec, source, src, target))
    if missing:
        raise ExportError(missing[0], f"{len(missing)} mask file(s) of the project are missing: "
                                      f"{named_paths(missing, project.root)}; nothing was exported")
    seen: dict[str, Path] = {}
    for item in items:  # names differing only in case would overwrite each other on some systems
        key = item.target.name.lower()
        if key in seen:
            raise ExportError(out_dir, f"images {seen[key].stem!r} and {item.target.stem!r} would "
                                       "be exported to the same file on case-insensitive file "
                                       "systems")
        seen[key] = item.target
    return items


def iter_export_masks(project: Any, out_dir: str | Path, *, fmt: str = "png", values: int = 255,
                      include: str = "annotated", force: bool = False,
                      pixel_size_mm: float | None = None, measure: bool = True, min_area: int = 5,
                      ) -> Generator[ProgressEvent, None, ExportResult]:
    """Export masks step by step: yields :class:`ProgressEvent`, returns :class:`ExportResult`.

    Parameters are those of :func:`export_masks`. Every check (options, output
    folder, missing masks, conflicting and unsafe targets) runs before the first
    event, so a refused export has written nothing.
    """
    config = MaskExportConfig(fmt=fmt, values=values, include=include, measure=measure,
                              min_area=min_area)
    out_dir = Path(out_dir)
    if pixel_size_mm is None:
        pixel_size_mm = project.pixel_size_mm
    if pixel_size_mm is not None:
        pixel_size_mm = check_pixel_size(pixel_size_mm)
    refuse_project_folders(project, out_dir)
    resolved_out = prepare_folder(out_dir)
    items = _plan(project, out_dir, resolved_out, config)
    tables, existing = _check_targets(out_dir, resolved_out, items, config, force)

    manifest, crack_rows, summary_rows = [], [], []
    masks: list[Path] = []
    n_cracks = 0
    total = len(items)
    yield ProgressEvent(0, total, "masks")
    for done, item in enumerate(items, start=1):
        mask = _write_item_mask(project, item, config)
        masks.append(item.target)
        manifest.append(_manifest_row(project, item, mask))
        if config.measure:
            rows, summary = _measurement_rows_of(item, mask, config, pixel_size_mm)
            n_cracks += len(rows)  # one row per crack
            crack_rows += rows
            summary_rows.append(summary)
        yield ProgressEvent(done, total, "masks")

    measurements_path, summary_path = write_tables(tables, manifest, crack_rows, summary_rows,
                                                    config.measure)
    n_sugg = sum(1 for it in items if it.source == "suggestion")
    n_drafts = sum(1 for it in items if it.source == "draft")
    logger.info("exported %d masks to %s (%d cracks measured)", len(masks), out_dir, n_cracks)
    return ExportResult(out_dir=out_dir, masks=tuple(masks), manifest=tables[0],
                        measurements=measurements_path, summary=summary_path,
                        n_annotated=len(items) - n_sugg - n_drafts, n_suggested=n_sugg,
                        n_drafts=n_drafts,
                        n_cracks=n_cracks, overwritten=tuple(existing),
                        pixel_size_mm=None if pixel_size_mm is None else float(pixel_size_mm))


def _check_targets(out_dir: Path, resolved_out: Path, items: Sequence[_Item],
                   config: MaskExportConfig, force: bool) -> tuple[list[Path], list[Path]]:
    """The table targets, and the targets that exist already (refused without ``force``).

    Parameters
    ----------
    out_dir, resolved_out : Path
        The output folder as given and resolved.
    items : sequence of _Item
        The planned masks.
    config : MaskExportConfig
        The options (``measure`` adds the two measurement tables).
    force : bool
        Allow replacing existing files.

    Returns
    -------
    tuple of list of Path
        ``[manifest, measurements, summary]`` (the manifest only without ``measure``),
        and the existing targets.

    Raises
    ------
    ExportError
        A target is unsafe, a folder is in the way, or files exist without ``force``.
    """
    tables = [safe_target(out_dir, resolved_out, MANIFEST_NAME)]
    if config.measure:
        tables += [safe_target(out_dir, resolved_out, MEASUREMENTS_NAME),
                   safe_target(out_dir, resolved_out, SUMMARY_NAME)]
    targets = [it.target for it in items] + tables
    existing = [t for t in targets if t.exists() or t.is_symlink()]
    folders = [t for t in existing if t.is_dir()]
    if folders:
        raise ExportError(folders[0], "a folder is in the way of an exported file; "
                                      "nothing was exported")
    if existing and not force:
        raise ExportError(out_dir, f"would overwrite {len(existing)} existing file(s): "
                                   f"{named_paths(existing, out_dir)}; nothing was exported "
                                   "(use force to overwrite)")
    return tables, existing


def _write_item_mask(project: Any, item: _Item, config: MaskExportConfig) -> Any:
    """Read the mask of one planned item and write it to its target.

    Parameters
    ----------
    project : Project
        The project.
    item : _Item
        The planned mask.
    config : MaskExportConfig
        Format and pixel values of the file.

    Returns
    -------
    ndarray
        The mask as read.

    Raises
    ------
    ExportError
        The mask file disappeared or the target cannot be written.
    """
    rec = item.record
    mask = {"suggestion": project.read_suggestion, "draft": project.read_draft,
            "annotation": project.read_annotation}[item.source](rec.name)
    if mask is None:  # deleted since planning
        raise ExportError(item.src_path, "mask file disappeared during the export")
    try:
        write_mask(item.target, mask, fmt=config.fmt, values=config.values)
    except InputError as exc:
        raise ExportError(item.target, f"cannot write the mask: {exc.problem}") from exc
    return mask


def _manifest_row(project: Any, item: _Item, mask: Any) -> dict[str, Any]:
    """The row of ``manifest.csv`` for one exported mask.

    Parameters
    ----------
    project : Project
        The project (for the model version of a draft).
    item : _Item
        The exported item.
    mask : ndarray
        The mask written.

    Returns
    -------
    dict
        ``{column: value}`` (see :data:`MANIFEST_COLUMNS`).
    """
    rec = item.record
    version = _version_of(project, item)
    return {"image": rec.filename, "mask": item.target.name, "source": item.source,
            "status": rec.status, "suggestion_model_version": version,
            "edit_fraction": (rec.edit_fraction if item.source == "annotation"
                              else None),
            "annotation_seconds": rec.annotation_seconds, "height": mask.shape[0],
            "width": mask.shape[1], "crack_pixels": int(mask.sum())}


def _measurement_rows_of(item: _Item, mask: Any, config: MaskExportConfig,
                         pixel_size_mm: float | None,
                         ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Measure the cracks of one mask: its ``measurements.csv`` rows and its summary row.

    Parameters
    ----------
    item : _Item
        The exported item.
    mask : ndarray
        The mask written.
    config : MaskExportConfig
        The options (``min_area``).
    pixel_size_mm : float or None
        Pixel size for the millimetre columns.

    Returns
    -------
    tuple
        One row per crack, and the row of ``measurements_summary.csv``.
    """
    rec = item.record
    cracks = measure_cracks(mask, pixel_size_mm=pixel_size_mm, min_area=config.min_area)
    rows = measurement_rows(rec.filename, item.source, cracks)
    summary = summarize_image(cracks, image_shape=mask.shape, pixel_size_mm=pixel_size_mm)
    return rows, summary_row(rec.filename, item.source, mask.shape, summary, pixel_size_mm)


def export_masks(project: Any, out_dir: str | Path, *, fmt: str = "png", values: int = 255,
                 include: str = "annotated", force: bool = False,
                 pixel_size_mm: float | None = None, measure: bool = True, min_area: int = 5,
                 progress: Callable[[int, int], None] | None = None) -> ExportResult:
    """Export the masks of a project to ``out_dir``, with a manifest and crack measurements.

    Parameters
    ----------
    project : Project
        An open project (:class:`napari_crack_al.core.project.Project`).
    out_dir : str or Path
        Output folder (created when missing).
    fmt : {"png", "tif"}
        Mask file format; files are named ``NAME.png`` / ``NAME.tif`` after their images.
    values : {255, 1}
        Pixel value of crack in the mask files (background 0).
    include : {"annotated", "annotated+suggested"}
        Accepted annotations only, or also, for images not annotated nor skipped, their
        draft (unaccepted corrections) where there is one, else their suggestion.
    force : bool
        Replace existing files; without it an export that would replace any file
        writes nothing and raises.
    pixel_size_mm : float or None
        Pixel size for the millimetre columns; None takes the project's.
    measure : bool
        Also write ``measurements.csv`` and ``measurements_summary.csv``.
    min_area : int
        Smallest crack measured, in pixels.
    progress : callable or None
        Called as ``progress(done, total)`` after every mask.

    Returns
    -------
    ExportResult

    Raises
    ------
    ExportError
        Files would be overwritten without ``force``, a target would land outside
        ``out_dir``, the folder cannot be created or written, or a project mask is missing.
    ConfigError
        An option is not one of its valid values.
    MaskError
        A project mask cannot be read.
    """
    gen = iter_export_masks(project, out_dir, fmt=fmt, values=values, include=include, force=force,
                            pixel_size_mm=pixel_size_mm, measure=measure, min_area=min_area)
    run = Outcome(gen)
    for event in run:
        if progress is not None:
            progress(event.done, event.total)
    return run.value

