"""The one error a user sees when a CT series cannot be read."""

from pathlib import Path


class SeriesError(Exception):
    """A DICOM file or directory that cannot become a CT volume, and why.

    ``problem`` is people-facing text, Chinese first then English
    ("只有一张切片 / only one slice"); ``str()`` is ``"<path>: <problem>"``.
    """

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"
