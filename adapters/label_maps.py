"""How each external source's labels map onto the 21 K-ium locations, as data, in one place.

Each rule is one of:
- ``one``: the source label is one K-ium location (several source labels may share one);
- ``group``: the source label means "at least one of these locations" (a noisy-OR target);
- ``unknown``: the source cannot tell, so these locations are unknown, never negative;
- ``none``: the source has no aneurysm at all, so these locations are known negatives.

``aneurysm sources --mapping`` prints these tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from aneurysm.schema import LOCATION_NAMES, NUM_LOCATIONS, GroupLabel


@dataclass(frozen=True)
class Rule:
    source_label: str
    kind: str  # "one", "group" or "unknown"
    targets: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in ("one", "group", "unknown", "none"):
            raise ValueError(f"unknown rule kind {self.kind!r}")
        bad = [t for t in self.targets if t not in LOCATION_NAMES]
        if bad:
            raise ValueError(f"{self.source_label}: unknown locations {bad}")


_POSTERIOR_OTHER = ("L_VA", "R_VA", "L_PICA", "R_PICA", "L_SCA", "R_SCA", "L_PCA", "R_PCA", "BA")

RSNA2025: tuple[Rule, ...] = (
    Rule("Left Infraclinoid Internal Carotid Artery", "one", ("L_ICA",)),
    Rule("Right Infraclinoid Internal Carotid Artery", "one", ("R_ICA",)),
    Rule("Left Supraclinoid Internal Carotid Artery", "one", ("L_ICA",)),
    Rule("Right Supraclinoid Internal Carotid Artery", "one", ("R_ICA",)),
    Rule("Left Middle Cerebral Artery", "one", ("L_MCA",)),
    Rule("Right Middle Cerebral Artery", "one", ("R_MCA",)),
    Rule("Anterior Communicating Artery", "group", ("L_ACOM", "R_ACOM")),
    Rule("Left Anterior Cerebral Artery", "one", ("L_ACA",)),
    Rule("Right Anterior Cerebral Artery", "one", ("R_ACA",)),
    Rule("Left Posterior Communicating Artery", "one", ("L_PCOM",)),
    Rule("Right Posterior Communicating Artery", "one", ("R_PCOM",)),
    Rule("Basilar Tip", "one", ("BA",)),
    Rule("Other Posterior Circulation", "group", _POSTERIOR_OTHER),
    # RSNA files anterior-choroidal aneurysms under supraclinoid ICA: AntChor is unknown.
    Rule("(no label)", "unknown", ("L_AntChor", "R_AntChor")),
)

#: ADAM, Lausanne and CADA label presence only: every location is unknown.
PRESENCE_ONLY: tuple[Rule, ...] = (Rule("(presence only)", "unknown", LOCATION_NAMES),)

#: TopCoW has no aneurysm: every location is a known negative.
NO_ANEURYSM: tuple[Rule, ...] = (Rule("(aneurysm-free)", "none", LOCATION_NAMES),)

#: TopCoW's 13 Circle-of-Willis vessel labels: (value, artery, injection territory it belongs
#: to). A carotid injection fills the ipsilateral ICA, MCA, ACA and PCOM; a vertebral one the
#: basilar and the PCAs. The ACOM and a third A2 lie between the carotids: they seed neither, and
#: the vessels they join decide. RSNA 2025's ``*_cowseg`` segmentations use these values too.
TOPCOW_ARTERIES: tuple[tuple[int, str, str], ...] = (
    (1, "BA", "V"), (2, "PCA", "V"), (3, "PCA", "V"),
    (4, "ICA", "RI"), (5, "MCA", "RI"), (6, "ICA", "LI"), (7, "MCA", "LI"),
    (8, "PCOM", "RI"), (9, "PCOM", "LI"), (10, "ACOM", ""),
    (11, "ACA", "RI"), (12, "ACA", "LI"), (15, "ACA", ""),
)


@dataclass(frozen=True)
class MappedLabels:
    locations: tuple[int, ...]
    location_known: tuple[bool, ...]
    groups: tuple[GroupLabel, ...]


def apply_rules(rules: tuple[Rule, ...], values: dict[str, int]) -> MappedLabels:
    """Source labels (0/1 by source label name) -> K-ium locations, known mask and groups.

    A positive wins over a negative; a location inside a positive group is never a known
    negative (RSNA's "Basilar Tip" = 0 says nothing about the rest of the basilar artery when
    "Other Posterior Circulation" = 1).
    """
    index = {n: i for i, n in enumerate(LOCATION_NAMES)}
    value = [0] * NUM_LOCATIONS
    known = [False] * NUM_LOCATIONS
    groups: list[GroupLabel] = []
    unsure: set[int] = set()
    for rule in rules:
        if rule.kind == "none":
            for t in rule.targets:
                known[index[t]] = True
            continue
        v = values.get(rule.source_label)
        if rule.kind == "unknown" or v is None:
            continue
        if rule.kind == "one":
            i = index[rule.targets[0]]
            known[i] = True
            value[i] = max(value[i], int(v))
        elif v:
            groups.append(GroupLabel(rule.targets, positive=True))
            unsure.update(index[t] for t in rule.targets)
        else:
            for t in rule.targets:
                known[index[t]] = True
    for i in unsure:
        if not value[i]:
            known[i] = False
    for rule in rules:
        if rule.kind == "unknown":
            for t in rule.targets:
                known[index[t]] = False
                value[index[t]] = 0
    return MappedLabels(tuple(value), tuple(known), tuple(groups))
