"""Pretrain the code model on the embedded six-language corpus (C/C++, Go, Java, JavaScript, Python, Rust).

    scripts/install_corpus_sources.sh   # once: the corpus sources (apt + npm)
    python -m hrm_jax.main --config=configs/pretrain_code.py --workdir=runs/pretrain_code
    python -m hrm_jax.main --config=configs/pretrain_code.py:tiny --workdir=/tmp/pretrain_code_tiny  # 2-core CPU

The model and optimiser are those of configs/pretrain_python.py (HRM-Text code-30m; `--config.model.family=...`
swaps the family as there). Data: `data.kind=code_corpus`; the corpus (<workdir>/code_corpus, capped per language by
`data.corpus_max_files_per_language` / `data.corpus_max_bytes_per_language`) and then the six-language tokenizer
(<workdir>/tokenizer/code.model, trained on `data.tokenizer_sample_files` files of every language, language tags
"<lang:go>" ... as special tokens) are built on the first run unless `data.path` / `data.tokenizer` point at
existing ones (`python -m input_pipeline.build_code_corpus --out DIR` builds both, with the statistics table).
Languages are sampled by `data.language_weights` (`--config.data.language_weights.go=2`; 0 leaves one out).
"""

from configs import pretrain_python

# Default mixture: roughly the languages' share of the plans (Python and the Go coder weighted up a little).
LANGUAGE_WEIGHTS = {"cpp": 1.0, "go": 1.5, "java": 1.0, "javascript": 1.0, "python": 1.5, "rust": 1.0}


def get_config(variant: str = "default"):
    if variant not in ("default", "tiny"):
        raise ValueError(f"configs/pretrain_code.py: unknown variant {variant!r} (default, tiny)")
    c = pretrain_python.get_config(variant)
    c.data.kind = "code_corpus"
    c.data.language_weights.update(LANGUAGE_WEIGHTS)
    c.data.corpus_stdlib_subdirs = ()  # the whole standard library (capped like every language)
    c.data.tokenizer_sample_files = 400  # per language
    if variant == "tiny":
        shrink_to_tiny(c)
    return c


def shrink_to_tiny(c):
    """Seconds to build, minutes to train on 2 CPU cores: 60 files (<= 1 MB) per language, a 1,024-token
    tokenizer on 40 files of each (the model is pretrain_python's tiny one)."""
    c.data.corpus_max_files_per_language = 60
    c.data.corpus_max_bytes_per_language = 1 << 20
    c.data.corpus_max_file_bytes = 100_000
    c.data.corpus_stdlib_subdirs = ("json", "email", "logging", "importlib", "urllib")
    c.data.corpus_validation_fraction = 0.1
    c.data.tokenizer_sample_files = 40
