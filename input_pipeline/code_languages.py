"""The six languages of the code corpus and tokenizer: names, file extensions, and their tokenizer tags."""
from __future__ import annotations

LANGUAGES = ("cpp", "go", "java", "javascript", "python", "rust")
# File-name endings that make a file one of the language's sources (C files count as cpp).
EXTENSIONS = {
    "cpp": (".h", ".hh", ".hpp", ".hxx", ".c", ".cc", ".cpp", ".cxx", ".tcc", ".inl"),
    "go": (".go",),
    "java": (".java",),
    "javascript": (".js", ".mjs", ".cjs"),
    "python": (".py",),
    "rust": (".rs",),
}


def language_tag(language: str) -> str:
    """The special token that opens a document of `language`, e.g. "<lang:go>"."""
    check_language(language)
    return f"<lang:{language}>"


LANGUAGE_TAGS = tuple(f"<lang:{lang}>" for lang in LANGUAGES)


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; the code corpus has {', '.join(LANGUAGES)}")
    return language


def parse_languages(spec: str | tuple | list) -> tuple[str, ...]:
    """"go,rust" or ("go", "rust") -> checked tuple in the given order, without repeats."""
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s) for s in spec]
    out: list[str] = []
    for name in names:
        if name and check_language(name) not in out:
            out.append(name)
    if not out:
        raise ValueError("no languages given")
    return tuple(out)
