"""`--config.mode=export`: restore a run's latest checkpoint and write it as `config.export.format`:

    hf     HRM-Text: a transformers folder with the tokenizer (`hf_folder`); the causal transformer baseline: a
           LlamaForCausalLM folder
    gguf   HRM-Text (hrm_text) or the causal transformer (llama): one GGUF file for llama.cpp, weights as
           `config.export.quant` (f32|f16|q8_0|q4_0)
    torch  puzzle HRM: safetensors + config.json in the original sapientinc/HRM names (`torch_hrm`);
           HRM-Text: the transformers folder's weights and config (no tokenizer)

into `config.export.out` (default <workdir>/export/<format>; for gguf a `.gguf` path or a folder to put
`model-<quant>.gguf` in).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import ml_collections
from absl import logging

from hrm_jax import data as data_lib, hf, train
from hrm_jax.export import gguf_kquants, gguf_validate, gguf_writer, hf_folder, torch_hrm

FORMATS = {"hf": ("hrm_text", "transformer"), "gguf": ("hrm_text", "transformer"), "torch": ("hrm", "hrm_text")}


class ExportError(ValueError):
    """An export that cannot be made (format vs model family, missing checkpoint); the message says why."""


def check_format(fmt: str, family: str, quant: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"config.export.format={fmt!r} is not one of {sorted(FORMATS)}")
    if family not in FORMATS[fmt]:
        hint = {"hrm": "use export.format=torch for the puzzle HRM",
                "hrm_text": "use export.format=hf, gguf or torch",
                "transformer": "use export.format=hf or gguf (the causal transformer is exported as llama)"}.get(
                    family, f"model.family={family!r} has no export format")
        raise ExportError(f"config.export.format={fmt!r} does not fit model.family={family!r} "
                          f"(it takes {', '.join(FORMATS[fmt])}); {hint}")
    known = (*gguf_writer.QUANTS, *gguf_kquants.K_QUANTS)
    if fmt == "gguf" and quant.lower() not in known:
        raise ExportError(f"config.export.quant={quant!r} is not one of {sorted(known)}")


def output_path(config: ml_collections.ConfigDict, workdir: str) -> Path:
    out = Path(config.export.out or os.path.join(workdir, "export", config.export.format))
    if config.export.format == "gguf" and out.suffix != ".gguf":
        out = out / f"model-{config.export.quant.lower()}.gguf"
    return out


def export_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> Path:
    """Restore `workdir`'s latest checkpoint and write it as `config.export.format`; returns the output path."""
    fmt, quant = config.export.format, config.export.quant
    check_format(fmt, config.model.family, quant)
    run, state = train.restore_trained(config, workdir)
    model = run.trainer.model(jax.device_get(state))
    out = output_path(config, workdir)
    if jax.process_index() != 0:
        return out
    if fmt == "torch" and run.trainer.family.name == "hrm":
        torch_hrm.export_torch_hrm(model, out, batch_size=config.data.global_batch_size)
    elif fmt == "torch":
        hf.save_pretrained(model, out)
    else:
        from input_pipeline.tokenizer import SentencePieceTokenizer  # noqa: PLC0415

        tokenizer = SentencePieceTokenizer.load(data_lib.tokenizer_path(config, workdir))
        if fmt == "hf":
            hf_folder.export_hf_folder(model, tokenizer, out)
        else:
            if quant.lower() in gguf_kquants.K_QUANTS:  # llama.cpp's quantizer, from an F32 file
                f32 = gguf_writer.write_gguf(model, tokenizer, out.with_suffix(".f32.gguf"), "f32")
                gguf_kquants.quantize(f32, out, quant)
                f32.unlink()
            else:
                gguf_writer.write_gguf(model, tokenizer, out, quant)
            summary = gguf_validate.validate_gguf(out)
            logging.info("GGUF %s: %d tensors %s", out, summary.tensor_count, summary.tensor_types)
    logging.info("export: step %d of %s -> %s (%s)", int(jax.device_get(state.step)), workdir, out, fmt)
    return out
