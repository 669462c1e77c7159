"""Injection territories: which vessels an internal-carotid or a vertebral injection fills.

A left ICA injection fills the left ICA, MCA, ACA, anterior choroidal and PCOM; a vertebral
injection the vertebrobasilar tree (VA, BA, PICA, SCA, PCA). Each vessel voxel is given to the
injection whose entry it is nearest to *along the vessels* (geodesic distance on the vessel mask,
multi-source Dijkstra), so a communicating artery splits where the flows would meet, and a
hemisphere is never cut by a plane.

The entries are either labelled artery voxels (TopCoW-style vessel labels, mapped to territories
as data in the adapters' label maps), or, without labels, found geometrically: the vessels
entering the bottom of the volume, the two anterior ones being the carotids and the posterior
ones the vertebrals.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from ..schema import TERRITORIES

_ENTRY_MM = 20.0  # the height above a vessel piece's bottom where its trunks are entries
_ONE_ARTERY_MM = 15.0  # entries closer than this, across and front to back, are one artery


def _neighbour_graph(mask: np.ndarray, spacing: float, fill: np.ndarray | None = None
                     ) -> tuple[coo_matrix, np.ndarray]:
    """A sparse graph of the mask's voxels, 26-connected, edges weighted by distance (mm); with
    ``fill`` (lumen occupancy), divided by the pair's mean fill, so a thin partial-volume stretch
    of a vessel still connects it, at a price, rather than sending its flow the long way round."""
    coords = np.argwhere(mask)
    index = np.full(mask.shape, -1, dtype=np.int64)
    index[tuple(coords.T)] = np.arange(len(coords))
    rows, cols, weights = [], [], []
    for offset in np.argwhere(np.ones((3, 3, 3), bool)) - 1:
        if not offset.any() or tuple(offset) < (0, 0, 0):
            continue  # each undirected edge once
        target = coords + offset
        inside = np.all((target >= 0) & (target < mask.shape), axis=1)
        j = np.full(len(coords), -1, dtype=np.int64)
        j[inside] = index[tuple(target[inside].T)]
        ok = j >= 0
        i = np.nonzero(ok)[0]
        w = np.full(len(i), float(np.linalg.norm(offset)) * spacing)
        if fill is not None:
            f = fill[tuple(coords[i].T)] + fill[tuple(coords[j[ok]].T)]
            w = w / np.clip(f / 2, 0.1, 1.0)
        rows.append(i)
        cols.append(j[ok])
        weights.append(w)
    r, c, w = (np.concatenate(x) for x in (rows, cols, weights))
    n = len(coords)
    return coo_matrix((w, (r, c)), shape=(n, n)), coords


def grow_territories(mask: np.ndarray, seeds: np.ndarray, spacing: float,
                     fill: np.ndarray | None = None) -> np.ndarray:
    """Label every mask voxel with the territory (1-based index into ``TERRITORIES``) of its
    geodesically nearest seed; ``seeds`` holds territory ids (0 = none) on the same grid.
    Voxels no seed reaches (a detached fragment) stay 0."""
    out = np.zeros(mask.shape, dtype=np.uint8)
    seeded = (seeds > 0) & mask
    if not seeded.any():
        return out
    graph, coords = _neighbour_graph(mask, spacing, fill)
    start = np.nonzero(seeded[tuple(coords.T)])[0]
    _, _, sources = dijkstra(graph, directed=False, indices=start, min_only=True,
                             return_predecessors=True)
    reached = sources >= 0
    labels = np.zeros(len(coords), dtype=np.uint8)
    labels[reached] = seeds[tuple(coords[sources[reached]].T)]
    out[tuple(coords.T)] = labels
    return out


def entry_seeds(mask: np.ndarray, spacing: float) -> np.ndarray:
    """Territory seeds where the vessels enter the volume from below, without labels.

    Every large vessel piece that starts in the lowest quarter of the vessels' height is an
    entry, seeded at its lowest 2 cm (a piece, not only the slab at the very bottom: bone
    removal or a thin stretch can break a trunk). Entries split into carotids (anterior) and
    vertebrals (posterior) at the widest gap between them from front to back; a carotid's side
    is read against the vessels' own midline (RAS+: x grows to the patient's right). A single
    entry is one injected carotid (3DRA); its side is guessed from where its tree spreads.
    """
    seeds = np.zeros(mask.shape, dtype=np.uint8)
    parts, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return seeds
    sizes = np.bincount(parts.ravel())[1:]
    coords = np.argwhere(mask)
    low, high = np.percentile(coords[:, 2], [0.5, 99.5])
    reach = low + 0.25 * (high - low)
    entries = []  # (voxels of the entry, x, y): each trunk's cross-section at its piece's bottom
    for label, where in enumerate(ndimage.find_objects(parts), start=1):
        if sizes[label - 1] < max(100 / spacing**3, 0.02 * sizes.max()) or where[2].start > reach:
            continue
        piece = parts[where] == label
        zs = np.nonzero(piece.any(axis=(0, 1)))[0]
        bottom = piece.copy()
        bottom[:, :, zs[0] + int(np.ceil(_ENTRY_MM / spacing)):] = False
        trunks, m = ndimage.label(bottom, structure=np.ones((3, 3, 3), bool))
        for k in range(1, m + 1):
            voxels = np.argwhere(trunks == k) + [w.start for w in where]
            if len(voxels) >= 5:
                entries.append((voxels, voxels[:, 0].mean(), voxels[:, 1].mean()))
    if not entries:
        return _halves(mask)
    xy = np.array([[e[1], e[2]] for e in entries]) * spacing
    if np.ptp(xy, axis=0).max() < _ONE_ARTERY_MM:  # one artery injected (a 3DRA): a carotid,
        voxels = np.concatenate([e[0] for e in entries])  # far the commoner
        x = voxels[:, 0].mean()
        # Its side is a guess: the filled tree (A1, ACOM, cross-filling) lies mostly medial
        # to the entering trunk, as it does for every 3DRA of the anatomy model.
        side = "LI" if np.median(coords[:, 0]) > x else "RI"
        seeds[tuple(voxels.T)] = TERRITORIES.index(side) + 1
        return seeds
    y = np.array([e[2] for e in entries])
    order = np.sort(y)
    gaps = np.diff(order)
    if len(order) > 1 and gaps.max() * spacing >= 5.0:
        cut = order[np.argmax(gaps)] + gaps.max() / 2
    else:  # one group: carotids if they sit in front of the vessels' centre
        cut = -np.inf if order.mean() >= np.median(coords[:, 1]) else np.inf
    midline = np.median(coords[:, 0])
    for voxels, x, yy in entries:
        if yy > cut:
            territory = TERRITORIES.index("LI" if x < midline else "RI") + 1
        else:
            territory = TERRITORIES.index("V") + 1
        seeds[tuple(voxels.T)] = territory
    return seeds


def _halves(mask: np.ndarray) -> np.ndarray:
    """The last resort when no vessel enters from below (a fragmented or cropped volume): the
    posterior vessels seed the vertebral territory, the anterior ones each side's carotid."""
    seeds = np.zeros(mask.shape, dtype=np.uint8)
    coords = np.argwhere(mask)
    if not len(coords):
        return seeds
    x_mid, y_mid = np.median(coords[:, 0]), np.median(coords[:, 1])
    posterior = coords[:, 1] < y_mid
    left = coords[:, 0] < x_mid
    labels = np.where(posterior, TERRITORIES.index("V") + 1,
                      np.where(left, TERRITORIES.index("LI") + 1, TERRITORIES.index("RI") + 1))
    seeds[tuple(coords.T)] = labels
    return seeds
