"""Exports of trained models: a transformers folder with its tokenizer (`hf_folder`), GGUF for llama.cpp
(`gguf_writer`, checked by `gguf_validate`), the puzzle HRM in the original PyTorch names (`torch_hrm`), and the
`--config.mode=export` driver (`run`)."""
