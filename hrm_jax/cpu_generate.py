"""Quantized CPU inference of an exported GGUF through llama.cpp's Python binding (optional dependency):

    python -m hrm_jax.cpu_generate model.gguf --prompt "<PROMPT>...<CODE>" [--max_new_tokens 128]

Greedy decoding; the prompt is tokenized by the GGUF's embedded tokenizer (no bos, markers parsed as tokens).
"""

from __future__ import annotations

import argparse
import sys

INSTALL_HINT = ("llama_cpp is not installed: `pip install llama-cpp-python` (builds llama.cpp from source, "
                "10-25 minutes on 2 cores; a build with the hrm_text architecture is needed, e.g. 0.3.36)")


def load_llama(path: str, n_ctx: int = 2048, **kwargs):
    """A `llama_cpp.Llama` for the GGUF at `path` (F32 KV cache, no CPU repack buffers: HRM_TEXT_REFERENCE 7.5)."""
    try:
        import llama_cpp  # noqa: PLC0415
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    opts = dict(n_ctx=n_ctx, type_k=0, type_v=0, verbose=False, logits_all=True)
    opts.update(kwargs)
    try:
        return llama_cpp.Llama(model_path=path, use_extra_bufts=False, **opts)
    except TypeError:  # older bindings without use_extra_bufts
        return llama_cpp.Llama(model_path=path, **opts)


def generate(llm, prompt: str, max_new_tokens: int) -> tuple[list[int], list[int]]:
    """(prompt ids, greedy new ids) with the GGUF's tokenizer, stopping after its eos."""
    ids = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    out: list[int] = []
    for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
        out.append(int(token))
        if token == llm.token_eos() or len(out) >= max_new_tokens:
            break
    return ids, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max_new_tokens", type=int, default=128)
    parser.add_argument("--n_ctx", type=int, default=2048)
    args = parser.parse_args(argv)
    try:
        llm = load_llama(args.gguf, n_ctx=args.n_ctx)
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _, out = generate(llm, args.prompt, args.max_new_tokens)
    print(llm.detokenize(out).decode("utf-8", errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
