"""Findings of the data doctor: what is wrong, where, and whether training can proceed."""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: error: training cannot proceed; warning: it can, but the data is not what it claims;
#: info: handled by preprocessing, reported so nobody is surprised.
SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    path: str
    message: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_json(self) -> dict:
        return asdict(self)
