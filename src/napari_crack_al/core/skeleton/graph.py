"""The skeleton graph of a crack mask: segments, length, width and branch points.

One graph serves the measurements (:func:`~napari_crack_al.core.export.measurements.measure_cracks`)
and the editing tools (:func:`~napari_crack_al.core.trace.segment_at`), so the segments an
annotator removes with one click are the segments the export counts.

Skeleton pixels are nodes; 8-neighbours are joined by an edge of length 1 or
sqrt(2) (a diagonal that has a 4-connected detour through a shared neighbour is left
out). :func:`analyse_skeleton` reads the graph as junction clusters and chunks
(paths between them), drops short side branches, merges close junctions, and gives
per crack label the length (with free-end extensions), the width statistics, the
branch points and the segments (kept chunks joined through junctions left with two
branches), and the segment of every skeleton pixel.
:func:`~.skeleton_input.prepare_skeleton` (re-exported here) makes the graph's inputs from a mask; :func:`label_segments` gives every crack pixel the segment
of its nearest segment pixel. The definitions are in the docstring of
:mod:`napari_crack_al.core.export.measurements`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix

from .inputs import SkeletonInput, prepare_skeleton
from scipy.sparse.csgraph import connected_components

__all__ = ["SkeletonStats", "SkeletonInput", "analyse_skeleton", "label_segments", "prepare_skeleton"]

_SQRT2 = math.sqrt(2.0)


class SkeletonStats(NamedTuple):
    """What :func:`analyse_skeleton` measures; per-crack arrays have ``n + 1`` entries (0 unused).

    Attributes
    ----------
    rows, cols : ndarray of int
        The skeleton pixels.
    node_lab : ndarray of int
        Crack label of each skeleton pixel.
    length : ndarray of float
        Skeleton length per crack (dropped side branches out, free-end extensions in).
    mean_w, max_w : ndarray of float
        Mean and maximum local width per crack.
    n_branch : ndarray of int
        Branch points per crack.
    n_segments : ndarray of int
        Segments per crack.
    node_segment : ndarray of int
        Segment of each skeleton pixel, numbered 1.. over the image (0: a branch point, a
        dropped side branch or a merged link between junctions).
    """

    rows: np.ndarray
    cols: np.ndarray
    node_lab: np.ndarray
    length: np.ndarray
    mean_w: np.ndarray
    max_w: np.ndarray
    n_branch: np.ndarray
    n_segments: np.ndarray
    node_segment: np.ndarray


def label_segments(mask: np.ndarray) -> np.ndarray:
    """Label every crack pixel with its segment of the skeleton graph (0 = background).

    The segments are those :func:`analyse_skeleton` counts for the measurements; every
    crack pixel takes the segment of its nearest segment pixel of the skeleton, so a
    segment carries the crack's width (and the pixels of its branch points go to the
    nearest segment). A crack whose skeleton has no segment pixel (a blob) is one segment.

    Parameters
    ----------
    mask : ndarray
        (H, W) crack mask (> 0 = crack); every 8-connected piece is a crack, however small.

    Returns
    -------
    ndarray
        int32 (H, W) segment labels 1..k.
    """
    m = np.asarray(mask) > 0
    out = np.zeros(m.shape, dtype=np.int32)
    labels, n = ndi.label(m, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return out
    prep = prepare_skeleton(labels, n)
    stats = analyse_skeleton(prep.labels, prep.fg, prep.skel, prep.dist, n)
    seg_img = np.zeros(prep.labels.shape, dtype=np.int32)
    seg_img[stats.rows, stats.cols] = stats.node_segment
    k = int(stats.node_segment.max()) if stats.node_segment.size else 0
    for lab, sl in enumerate(prep.slices, start=1):
        box = tuple(slice(s.start - 1, s.stop + 1) for s in sl)  # inside the one-pixel margin
        crack = prep.labels[box] == lab
        seeds = np.where(crack, seg_img[box], 0)
        if not seeds.any():  # a blob: one segment of its own
            k += 1
            seg_img[box][crack] = k
            continue
        _, (rows, cols) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
        seg_img[box][crack] = seeds[rows, cols][crack]
    r0, c0 = prep.origin
    h, w = seg_img.shape[0] - 2, seg_img.shape[1] - 2
    out[r0:r0 + h, c0:c0 + w] = seg_img[1:-1, 1:-1]
    return out


def _skeleton_graph(skel: np.ndarray) -> tuple[np.ndarray, ...]:
    """Nodes (rows, cols) and undirected edges (u, v, weight) of a skeleton image."""
    h, w = skel.shape
    rows, cols = np.nonzero(skel)
    idx = np.full((h + 2, w + 2), -1, dtype=np.int64)
    idx[rows + 1, cols + 1] = np.arange(rows.size)
    r1, c1 = rows + 1, cols + 1
    us, vs, ws = [], [], []
    for dr, dc, weight in ((0, 1, 1.0), (1, 0, 1.0), (1, 1, _SQRT2), (1, -1, _SQRT2)):
        other = idx[r1 + dr, c1 + dc]
        ok = other >= 0
        if dr and dc:  # diagonal: skip when a 4-connected path through a shared neighbour exists
            ok &= (idx[r1, c1 + dc] < 0) & (idx[r1 + dr, c1] < 0)
        us.append(np.nonzero(ok)[0])
        vs.append(other[ok])
        ws.append(np.full(int(ok.sum()), weight))
    return rows, cols, np.concatenate(us), np.concatenate(vs), np.concatenate(ws)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _end_extension(fg: np.ndarray, skel: np.ndarray, r: int, c: int, d: float, deg: int) -> float:
    """Length from a free end of the skeleton to the edge of the crack, along the skeleton.

    The direction points from the skeleton pixels within 3 pixels of the end to the
    end; a ray from the end pixel's centre is walked through the pixel grid until it
    enters background (exact cell traversal), capped at ``2 d + 1``. An isolated
    skeleton pixel (a blob) extends ``d - 0.5`` both ways.
    """
    if deg == 0:
        return 2.0 * max(d - 0.5, 0.0)
    h, w = skel.shape
    r0, r1, c0, c1 = max(r - 3, 0), min(r + 4, h), max(c - 3, 0), min(c + 4, w)
    nr, nc = np.nonzero(skel[r0:r1, c0:c1])
    dr = r - (nr.sum() + r0 * nr.size - r) / max(nr.size - 1, 1)
    dc = c - (nc.sum() + c0 * nc.size - c) / max(nc.size - 1, 1)
    norm = math.hypot(dr, dc)
    if norm < 1e-9:
        return max(d - 0.5, 0.0)
    dr, dc = dr / norm, dc / norm
    cap = 2.0 * d + 1.0
    step_r, step_c = (1 if dr > 0 else -1), (1 if dc > 0 else -1)
    t_r = 0.5 / abs(dr) if abs(dr) > 1e-12 else math.inf
    t_c = 0.5 / abs(dc) if abs(dc) > 1e-12 else math.inf
    delta_r = 1.0 / abs(dr) if abs(dr) > 1e-12 else math.inf
    delta_c = 1.0 / abs(dc) if abs(dc) > 1e-12 else math.inf
    cr, cc = r, c
    while True:
        if t_r < t_c:
            cr, t, t_r = cr + step_r, t_r, t_r + delta_r
        else:
            cc, t, t_c = cc + step_c, t_c, t_c + delta_c
        if t >= cap:
            return cap
        if not (0 <= cr < h and 0 <= cc < w) or not fg[cr, cc]:
            return t


def analyse_skeleton(labels: np.ndarray, fg: np.ndarray, skel: np.ndarray, dist: np.ndarray,
                     n: int) -> SkeletonStats:
    """Measure the skeleton graph of every crack.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Crack labels 1..n with a background border of at least one pixel.
    fg : ndarray of bool
        ``labels > 0``.
    skel : ndarray of bool
        The one-pixel-wide skeleton of ``fg``.
    dist : ndarray of float
        Euclidean distance of each crack pixel to the background.
    n : int
        Number of cracks.

    Returns
    -------
    SkeletonStats
    """
    rows, cols, u, v, wts = _skeleton_graph(skel)
    n_nodes = rows.size
    node_lab = labels[rows, cols]
    node_d = dist[rows, cols]
    deg = np.bincount(u, minlength=n_nodes) + np.bincount(v, minlength=n_nodes)
    branch = deg >= 3
    width = _local_width(rows, cols, skel, dist, node_d)
    pieces = _pieces(u, v, wts, branch, node_d, node_lab)
    dropped, uf = _prune(pieces)
    junc_deg = _junction_degrees(pieces, dropped, uf)
    n_branch = np.zeros(n + 1, dtype=np.int64)
    for root, d in junc_deg.items():
        if d >= 3:
            n_branch[pieces.lab[root]] += 1
    node_segment, n_segments = _segments(pieces, dropped, uf, junc_deg, n)
    spur = dropped & ~pieces.is_junction
    node_kept = ~spur[pieces.of_node]
    length = _lengths(fg, skel, rows, cols, u, wts, node_lab, node_d, deg, branch, pieces, spur,
                      node_kept, n)
    mean_w, max_w = _width_stats(node_lab, width, node_kept & ~branch, n)
    return SkeletonStats(rows, cols, node_lab, length, mean_w, max_w, n_branch, n_segments,
                         node_segment)


def _local_width(rows: np.ndarray, cols: np.ndarray, skel: np.ndarray, dist: np.ndarray,
                 node_d: np.ndarray) -> np.ndarray:
    """Width at each skeleton pixel: 2d - 1, or 2d where a 4-neighbour off the skeleton is as
    far from the edge (an even width)."""
    flat = np.zeros(rows.size, dtype=bool)
    dpad = np.pad(np.where(skel, -1.0, dist), 1)
    for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        flat |= dpad[rows + 1 + dr, cols + 1 + dc] >= node_d - 1e-6
    return np.where(flat, 2.0 * node_d, 2.0 * node_d - 1.0)


class _Pieces(NamedTuple):
    """Junction clusters (connected branch pixels) and chunks (paths of pixels with at most two
    neighbours) of a skeleton graph, and which junctions each chunk touches."""

    of_node: np.ndarray        # piece of each skeleton pixel
    is_junction: np.ndarray    # per piece
    length: np.ndarray         # per piece: its edges, plus its links to junctions (chunks)
    radius: np.ndarray         # per piece: the largest distance to the background
    lab: np.ndarray            # per piece: the crack label
    chunk_links: dict[int, list[int]]  # chunk -> the junction pieces it touches


def _pieces(u: np.ndarray, v: np.ndarray, wts: np.ndarray, branch: np.ndarray,
            node_d: np.ndarray, node_lab: np.ndarray) -> _Pieces:
    n_nodes = node_d.size
    same = branch[u] == branch[v]
    graph = coo_matrix((np.ones(int(same.sum())), (u[same], v[same])), shape=(n_nodes, n_nodes))
    _, piece = connected_components(graph, directed=False)
    n_pieces = int(piece.max()) + 1 if n_nodes else 0
    is_junction = np.zeros(n_pieces, dtype=bool)
    is_junction[piece[branch]] = True
    length = np.bincount(piece[u[same]], weights=wts[same], minlength=n_pieces).astype(float)
    radius = np.zeros(n_pieces)
    np.maximum.at(radius, piece, node_d)
    lab = np.zeros(n_pieces, dtype=np.int64)
    lab[piece] = node_lab
    link = ~same  # edges joining a chunk pixel to a junction pixel
    lu, lv, lw = u[link], v[link], wts[link]
    link_chunk = np.where(branch[lu], piece[lv], piece[lu])
    link_junc = np.where(branch[lu], piece[lu], piece[lv])
    length += np.bincount(link_chunk, weights=lw, minlength=n_pieces)
    chunk_links: dict[int, list[int]] = {}
    for c, j in zip(link_chunk.tolist(), link_junc.tolist()):
        chunk_links.setdefault(c, []).append(j)
    return _Pieces(piece, is_junction, length, radius, lab, chunk_links)


def _prune(pieces: _Pieces) -> tuple[np.ndarray, _UnionFind]:
    """Drop side branches shorter than the crack's width (a junction keeps its two longest)
    and short links between junctions, whose junctions are merged."""
    links, plen, radius = pieces.chunk_links, pieces.length, pieces.radius.copy()
    dropped = np.zeros(plen.size, dtype=bool)
    uf = _UnionFind(plen.size)
    branches: dict[int, list[int]] = {}
    for c, js in links.items():
        for j in js:
            branches.setdefault(j, []).append(c)
    for j, cs in branches.items():
        short = sorted((c for c in cs if len(links[c]) == 1 and plen[c] <= 2.0 * radius[j]),
                       key=lambda c: plen[c])
        for c in short[:max(0, len(cs) - 2)]:
            dropped[c] = True
    for c in sorted((c for c, js in links.items() if len(js) == 2), key=lambda c: plen[c]):
        a, b = (uf.find(j) for j in links[c])
        ra, rb = radius[a], radius[b]
        if plen[c] <= ra + rb + 1.0:
            dropped[c] = True
            uf.union(a, b)
            radius[uf.find(a)] = max(ra, rb)
    return dropped, uf


def _junction_degrees(pieces: _Pieces, dropped: np.ndarray, uf: _UnionFind) -> dict[int, int]:
    """Kept branches per merged junction."""
    junc_deg: dict[int, int] = {}
    for c, js in pieces.chunk_links.items():
        if dropped[c]:
            continue
        for j in js:
            root = uf.find(j)
            junc_deg[root] = junc_deg.get(root, 0) + 1
    return junc_deg


def _segments(pieces: _Pieces, dropped: np.ndarray, uf: _UnionFind, junc_deg: dict[int, int],
              n: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment of each skeleton pixel (0: none) and segments per crack.

    A segment is a set of kept chunks joined through junctions with exactly two kept
    branches (a junction whose side branch was dropped is no longer a branch point); the
    pixels of such a junction belong to the segment, those of a branch point to none.
    """
    n_pieces = pieces.length.size
    au, av = [], []
    for c, js in pieces.chunk_links.items():
        if dropped[c]:
            continue
        for j in js:
            root = uf.find(j)
            if junc_deg.get(root, 0) == 2:
                au.append(c)
                av.append(root)
    aux = coo_matrix((np.ones(len(au)), (au, av)), shape=(n_pieces, n_pieces))
    _, seg_id = connected_components(aux, directed=False)
    root_of = np.array([uf.find(p) for p in range(n_pieces)], dtype=np.int64)
    kept = ~pieces.is_junction & ~dropped
    joined = pieces.is_junction & np.array([junc_deg.get(int(r), 0) == 2 for r in root_of],
                                           dtype=bool)
    piece_seg = np.full(n_pieces, -1, dtype=np.int64)
    piece_seg[kept] = seg_id[kept]
    piece_seg[joined] = seg_id[root_of[joined]]
    # number the segments 1.. in the order of their first kept chunk
    first = {}
    for c in np.nonzero(kept)[0].tolist():
        first.setdefault(int(seg_id[c]), len(first) + 1)
    number = np.zeros(int(seg_id.max()) + 1 if n_pieces else 0, dtype=np.int64)
    for sid, k in first.items():
        number[sid] = k
    node_piece_seg = piece_seg[pieces.of_node] if n_pieces else np.zeros(0, dtype=np.int64)
    node_segment = np.where(node_piece_seg >= 0, number[np.maximum(node_piece_seg, 0)], 0)
    n_segments = np.zeros(n + 1, dtype=np.int64)
    for sid, c in {int(seg_id[c]): c for c in np.nonzero(kept)[0].tolist()}.items():
        n_segments[pieces.lab[c]] += 1
    return node_segment, n_segments


def _lengths(fg: np.ndarray, skel: np.ndarray, rows: np.ndarray, cols: np.ndarray,
             u: np.ndarray, wts: np.ndarray, node_lab: np.ndarray, node_d: np.ndarray,
             deg: np.ndarray, branch: np.ndarray, pieces: _Pieces, spur: np.ndarray,
             node_kept: np.ndarray, n: int) -> np.ndarray:
    """Length per crack: every skeleton edge, minus dropped side branches, plus free ends."""
    length = np.bincount(node_lab[u], weights=wts, minlength=n + 1).astype(float)
    for c in np.nonzero(spur)[0].tolist():
        if len(pieces.chunk_links.get(c, [])) == 1:
            length[pieces.lab[c]] -= pieces.length[c]
    ends = np.nonzero(node_kept & ~branch & (deg <= 1))[0]
    ext = np.array([_end_extension(fg, skel, int(rows[i]), int(cols[i]), float(node_d[i]),
                                   int(deg[i])) for i in ends.tolist()], dtype=float)
    length += np.bincount(node_lab[ends], weights=ext, minlength=n + 1)
    return np.maximum(length, 0.0)


def _width_stats(node_lab: np.ndarray, width: np.ndarray, use: np.ndarray, n: int,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and maximum width per crack over ``use`` pixels (all its pixels when it has none)."""
    has_use = np.bincount(node_lab[use], minlength=n + 1) > 0
    use = use | ~has_use[node_lab]
    cnt = np.bincount(node_lab[use], minlength=n + 1)
    mean_w = np.bincount(node_lab[use], weights=width[use], minlength=n + 1) / np.maximum(cnt, 1)
    max_w = np.zeros(n + 1)
    np.maximum.at(max_w, node_lab[use], width[use])
    return mean_w, max_w
