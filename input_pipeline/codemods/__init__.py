"""Verified codemod data: ast-grep rule templates over the embedded Python corpus (see records.py)."""
