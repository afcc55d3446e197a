"""Puzzle data for HRM: hard Sudoku and 30x30 maze generators, HRM's on-disk dataset format.

Numpy only (no jax), so data-loading workers stay light. Entry points:
``python -m input_pipeline.puzzles.sudoku`` and ``python -m input_pipeline.puzzles.maze``.
"""
