"""The data doctor: what is wrong with a data folder, found before any training starts."""

from .doctor import DoctorReport, run_doctor
from .findings import Finding

__all__ = ["DoctorReport", "Finding", "run_doctor"]
