"""Measuring the classifier against a labelled set (rule R6.1d severity, R6.2 routing).

A labelled set is a JSON Lines file, one message a line::

    {"id": "d0001", "text": "景区发生踩踏，好多人受伤", "severity": "critical", "department": "industry",
     "note": "why the label is what it is (optional)"}

``load_examples`` reads and validates such a file; ``evaluate`` runs any classifier over the examples
and counts: critical recall, precision and F1 (critical is the positive class: a missed critical
message is the costly error under R6.1d), department accuracy, a department confusion matrix,
the 2×2 severity confusion, every misclassified example and the mean classification time.
``render_report`` turns a report into rich tables for the ``guanwei eval`` command.

Pure: no HTTP, no storage, no printing. The classifier is duck-typed: any object whose
``classify(text)`` returns something with ``severity``, ``department``, ``score`` and ``matched``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

__all__ = [
    "GOALS",
    "EvalReport",
    "Example",
    "Goal",
    "Misclassification",
    "evaluate",
    "load_examples",
    "render_report",
]

CRITICAL = "critical"
ROUTINE = "routine"
SEVERITIES = (ROUTINE, CRITICAL)

# The goals of issue 3 (R6.1d: a missed critical message costs far more than a false alarm).
GOALS: dict[str, float] = {
    "critical_recall": 0.95,
    "critical_precision": 0.85,
    "department_accuracy": 0.85,
}

_ALLOWED_KEYS = frozenset({"id", "text", "severity", "department", "note"})
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_REQUIRED_KEYS = ("id", "text", "severity", "department")
_DEPARTMENT_KEY_RE = re.compile(r"[a-z][a-z0-9_]*\Z")


class _Classification(Protocol):
    severity: str
    department: str
    score: float
    matched: Sequence[str]


class _Classifier(Protocol):
    def classify(self, text: str) -> _Classification: ...


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled message."""

    id: str
    text: str
    severity: str  # routine | critical
    department: str
    note: str | None = None


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_examples(path: str | Path, *, departments: Collection[str] | None = None) -> list[Example]:
    """Read a labelled JSON Lines file. Blank lines are skipped; any other bad line raises ValueError
    naming ``file:line`` and the problem (invalid JSON, a missing or unknown key, a wrong type, a
    severity other than routine/critical, a malformed department key, a duplicate id). When
    ``departments`` is given, every label must be one of them."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from None
    known = set(departments) if departments is not None else None
    examples: list[Example] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        example = _parse_line(line, where, known)
        if example.id in seen:
            raise ValueError(f"{where}: duplicate id {example.id!r} (first at line {seen[example.id]})")
        seen[example.id] = number
        examples.append(example)
    return examples


def _parse_line(line: str, where: str, departments: set[str] | None) -> Example:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _ALLOWED_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_ALLOWED_KEYS))})")
    for key in _REQUIRED_KEYS:
        if key not in data:
            raise ValueError(f"{where}: missing key {key!r}")
        if not isinstance(data[key], str):
            raise ValueError(f"{where}: {key!r} must be a string, got {data[key]!r}")
    for key, value in data.items():
        if isinstance(value, str) and _SURROGATE_RE.search(value):
            # a JSON escape such as "\ud800" on its own is no character: nothing could print or store it
            raise ValueError(f"{where}: {key!r} holds an unpaired surrogate escape (not a character)")
    if not data["id"].strip():
        raise ValueError(f"{where}: empty id")
    if not data["text"].strip():
        raise ValueError(f"{where}: empty text")
    if data["severity"] not in SEVERITIES:
        raise ValueError(f"{where}: severity must be 'routine' or 'critical', got {data['severity']!r}")
    department = data["department"]
    if not _DEPARTMENT_KEY_RE.match(department):
        raise ValueError(f"{where}: department {department!r} is not a department key")
    if departments is not None and department not in departments:
        raise ValueError(f"{where}: unknown department {department!r} (known: {', '.join(sorted(departments))})")
    note = data.get("note")
    if note is not None and not isinstance(note, str):
        raise ValueError(f"{where}: 'note' must be a string, got {note!r}")
    return Example(id=data["id"], text=data["text"], severity=data["severity"], department=department, note=note)


# --------------------------------------------------------------------------------------------
# Evaluating
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Misclassification:
    """An example whose severity or department the classifier got wrong."""

    id: str
    text: str
    expected_severity: str
    expected_department: str
    got_severity: str
    got_department: str
    score: float
    matched: tuple[str, ...]
    note: str | None = None

    @property
    def severity_wrong(self) -> bool:
        return self.expected_severity != self.got_severity

    @property
    def department_wrong(self) -> bool:
        return self.expected_department != self.got_department

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "expected": {"severity": self.expected_severity, "department": self.expected_department},
            "got": {"severity": self.got_severity, "department": self.got_department},
            "score": self.score,
            "matched": list(self.matched),
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Goal:
    name: str
    value: float | None
    target: float

    @property
    def met(self) -> bool:
        return self.value is not None and self.value >= self.target


@dataclass(frozen=True, slots=True)
class EvalReport:
    count: int
    true_positives: int  # critical, classified critical
    false_positives: int  # routine, classified critical (a false alarm)
    false_negatives: int  # critical, classified routine (a miss)
    true_negatives: int
    critical_recall: float | None  # None when the set holds no critical example
    critical_precision: float | None  # None when nothing was classified critical
    critical_f1: float | None
    department_accuracy: float
    departments: tuple[str, ...]  # row and column order of the confusion matrix
    department_confusion: dict[str, dict[str, int]]  # expected → predicted → count (zeros included)
    severity_confusion: dict[str, dict[str, int]]  # expected → predicted → count, routine/critical
    misclassified: tuple[Misclassification, ...]
    mean_ms: float  # mean classification time per message, informational
    max_ms: float
    goals: tuple[Goal, ...] = field(default=())

    @property
    def goals_met(self) -> bool:
        return all(goal.met for goal in self.goals)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "critical": {
                "recall": self.critical_recall,
                "precision": self.critical_precision,
                "f1": self.critical_f1,
                "true_positives": self.true_positives,
                "false_positives": self.false_positives,
                "false_negatives": self.false_negatives,
                "true_negatives": self.true_negatives,
            },
            "department_accuracy": self.department_accuracy,
            "departments": list(self.departments),
            "department_confusion": {k: dict(v) for k, v in self.department_confusion.items()},
            "severity_confusion": {k: dict(v) for k, v in self.severity_confusion.items()},
            "misclassified": [m.to_dict() for m in self.misclassified],
            "timing": {"mean_ms": self.mean_ms, "max_ms": self.max_ms},
            "goals": {g.name: {"value": g.value, "target": g.target, "met": g.met} for g in self.goals},
            "goals_met": self.goals_met,
        }


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def evaluate(
    classifier: _Classifier,
    examples: Iterable[Example],
    *,
    departments: Sequence[str] | None = None,
    goals: dict[str, float] | None = None,
) -> EvalReport:
    """Classify every example and count. ``departments`` fixes the confusion matrix's order (by default
    the labels and predictions in order of first appearance). Raises ValueError on an empty set."""
    examples = list(examples)
    if not examples:
        raise ValueError("no examples to evaluate")
    goals = GOALS if goals is None else goals

    predictions = []
    times: list[float] = []
    for example in examples:
        start = time.perf_counter()
        result = classifier.classify(example.text)
        times.append(time.perf_counter() - start)
        predictions.append(result)

    order: list[str] = list(departments or ())
    for example, result in zip(examples, predictions, strict=True):
        for key in (example.department, result.department):
            if key not in order:
                order.append(key)

    severity_confusion = {e: {g: 0 for g in SEVERITIES} for e in SEVERITIES}
    department_confusion = {e: {g: 0 for g in order} for e in order}
    misclassified: list[Misclassification] = []
    department_right = 0
    for example, result in zip(examples, predictions, strict=True):
        got_severity = CRITICAL if result.severity == CRITICAL else ROUTINE
        severity_confusion[example.severity][got_severity] += 1
        department_confusion[example.department][result.department] += 1
        department_right += example.department == result.department
        if got_severity != example.severity or result.department != example.department:
            misclassified.append(
                Misclassification(
                    id=example.id,
                    text=example.text,
                    expected_severity=example.severity,
                    expected_department=example.department,
                    got_severity=got_severity,
                    got_department=result.department,
                    score=float(result.score),
                    matched=tuple(result.matched),
                    note=example.note,
                )
            )

    tp = severity_confusion[CRITICAL][CRITICAL]
    fn = severity_confusion[CRITICAL][ROUTINE]
    fp = severity_confusion[ROUTINE][CRITICAL]
    tn = severity_confusion[ROUTINE][ROUTINE]
    recall = _ratio(tp, tp + fn)
    precision = _ratio(tp, tp + fp)
    f1 = (
        None
        if recall is None or precision is None
        else (2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    )
    accuracy = department_right / len(examples)
    values = {"critical_recall": recall, "critical_precision": precision, "department_accuracy": accuracy}
    return EvalReport(
        count=len(examples),
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        true_negatives=tn,
        critical_recall=recall,
        critical_precision=precision,
        critical_f1=f1,
        department_accuracy=accuracy,
        departments=tuple(order),
        department_confusion=department_confusion,
        severity_confusion=severity_confusion,
        misclassified=tuple(misclassified),
        mean_ms=1000 * sum(times) / len(times),
        max_ms=1000 * max(times),
        goals=tuple(Goal(name, values.get(name), target) for name, target in goals.items()),
    )


# --------------------------------------------------------------------------------------------
# Rendering (rich tables for the CLI)
# --------------------------------------------------------------------------------------------

_GOAL_LABELS = {
    "critical_recall": "critical recall",
    "critical_precision": "critical precision",
    "department_accuracy": "department accuracy",
}


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def render_report(report: EvalReport, *, max_misclassified: int | None = None) -> list[RenderableType]:
    """Tables for a terminal: the summary with the goals (✓/✗), the severity confusion, the department
    confusion, and the misclassified examples (all of them unless ``max_misclassified`` is given)."""
    goal_by_name = {goal.name: goal for goal in report.goals}

    summary = Table(title=f"Evaluation: {report.count} messages", title_justify="left")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    summary.add_column("goal", justify="right")
    summary.add_column("", justify="center")

    def row(name: str, label: str, value: float | None) -> None:
        goal = goal_by_name.get(name)
        if goal is None:
            summary.add_row(label, _fmt(value), "", "")
            return
        mark = Text("✓", style="green") if goal.met else Text("✗", style="bold red")
        summary.add_row(label, _fmt(value), f"≥ {goal.target:.2f}", mark)

    row("critical_recall", "critical recall", report.critical_recall)
    row("critical_precision", "critical precision", report.critical_precision)
    row("critical_f1", "critical F1", report.critical_f1)
    row("department_accuracy", "department accuracy", report.department_accuracy)
    for goal in report.goals:  # goals beyond the three standard metrics
        if goal.name not in _GOAL_LABELS:
            row(goal.name, goal.name, goal.value)
    summary.add_row("mean time per message", f"{report.mean_ms:.3f} ms", "", "")

    severity = Table(title="Severity (rows: expected, columns: classified)", title_justify="left")
    severity.add_column("expected")
    for name in SEVERITIES:
        severity.add_column(name, justify="right")
    for expected in SEVERITIES:
        severity.add_row(expected, *(str(report.severity_confusion[expected][got]) for got in SEVERITIES))

    departments = Table(title="Departments (rows: expected, columns: classified)", title_justify="left")
    departments.add_column("expected")
    for key in report.departments:
        departments.add_column(key, justify="right")
    departments.add_column("accuracy", justify="right")
    for expected in report.departments:
        counts = report.department_confusion[expected]
        total = sum(counts.values())
        cells = [
            Text(str(counts[got]), style="bold" if got == expected else ("red" if counts[got] else "dim"))
            for got in report.departments
        ]
        departments.add_row(expected, *cells, _fmt(counts[expected] / total if total else None))

    shown = report.misclassified if max_misclassified is None else report.misclassified[:max_misclassified]
    wrong = Table(title=f"Misclassified: {len(report.misclassified)}", title_justify="left", show_lines=True)
    wrong.add_column("id", no_wrap=True)
    wrong.add_column("text", ratio=3)
    wrong.add_column("expected", no_wrap=True)
    wrong.add_column("got", no_wrap=True)
    wrong.add_column("score", justify="right")
    wrong.add_column("matched", ratio=1)
    for m in shown:
        got = Text()
        got.append(m.got_severity, style="bold red" if m.severity_wrong else "")
        got.append("\n")
        got.append(m.got_department, style="bold red" if m.department_wrong else "")
        wrong.add_row(
            m.id,
            m.text,
            f"{m.expected_severity}\n{m.expected_department}",
            got,
            f"{m.score:g}",
            ", ".join(m.matched),
        )
    out: list[RenderableType] = [summary, severity, departments, wrong]
    if len(shown) < len(report.misclassified):
        out.append(Text(f"… and {len(report.misclassified) - len(shown)} more"))
    return out
