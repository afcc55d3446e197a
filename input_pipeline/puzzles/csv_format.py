"""CSV files shaped like the HF sources of HRM's builders (sapientinc/sudoku-extreme,
sapientinc/maze-30x30-hard-1k): header ``source,question,answer,rating``, one puzzle a row,
so ``build_sudoku_dataset.py`` and ``build_maze_dataset.py`` can read our puzzles."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

HEADER = ("source", "question", "answer", "rating")


@dataclass(frozen=True)
class PuzzleRow:
    """One CSV row: where the puzzle came from, its question and answer strings, its rating."""

    source: str
    question: str
    answer: str
    rating: int


def write_puzzle_csv(path: str, rows) -> None:
    """Writes ``rows`` (PuzzleRow) with the HF header."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow((row.source, row.question, row.answer, int(row.rating)))


def read_puzzle_csv(path: str) -> list[PuzzleRow]:
    """Reads a CSV written by ``write_puzzle_csv`` (or an HF source CSV)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header) != HEADER:
            raise ValueError(f"{path}: header {header}, expected {list(HEADER)}")
        rows = []
        for line_no, fields in enumerate(reader, start=2):
            if len(fields) != 4:
                raise ValueError(f"{path}:{line_no}: expected 4 fields, got {len(fields)}")
            source, question, answer, rating = fields
            rows.append(PuzzleRow(source, question, answer, int(rating)))
        return rows
