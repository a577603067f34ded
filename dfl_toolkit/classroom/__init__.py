"""The classroom: assignment notebooks (``release``: student copies from sources), the self-checks students
run (``checks``) and grading of submissions, each in its own sandbox (``grade``, ``sandbox``).

Example:
    >>> from dfl_toolkit.classroom import checks, grade, release
    >>> release("notebooks/assignments/source", "notebooks/assignments/release")
    >>> grade("submissions", "notebooks/assignments/source", "grades", jobs=2)
"""

from .grade import Grade, grade, grading_notebook
from .release import AssignmentError, questions, release, student_copy
from .sandbox import Sandbox, SandboxError, detect

__all__ = ["AssignmentError", "Grade", "Sandbox", "SandboxError", "detect", "grade", "grading_notebook", "questions",
           "release", "student_copy"]
