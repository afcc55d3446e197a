"""`--config.mode=export`: restore a run's latest checkpoint and write it as `config.export.format`:

    hf     HRM-Text: a transformers folder with the tokenizer (`hf_folder`); the causal transformer baseline: a
           LlamaForCausalLM folder
    gguf   HRM-Text (hrm_text) or the causal transformer (llama): one GGUF file for llama.cpp, weights as
           `config.export.quant` (f32|f16|q8_0|q4_0)
    torch  puzzle HRM: safetensors + config.json in the original sapientinc/HRM names (`torch_hrm`);
           puzzle TRM: the same in the original TinyRecursiveModels names (`torch_trm`);
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

from hrm_jax import hf, restore
from hrm_jax.export import gguf_kquants, gguf_validate, gguf_writer, hf_folder, torch_hrm, torch_trm

FORMATS = {"hf": ("hrm_text", "transformer"), "gguf": ("hrm_text", "transformer"),
           "torch": ("hrm", "hrm_text", "trm")}


class ExportError(ValueError):
    """An export that cannot be made (format vs model family, missing checkpoint); the message says why."""


def check_format(fmt: str, family: str, quant: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"config.export.format={fmt!r} is not one of {sorted(FORMATS)}")
    if family not in FORMATS[fmt]:
        hint = {"hrm": "use export.format=torch for the puzzle HRM",
                "hrm_text": "use export.format=hf, gguf or torch",
                "trm": "use export.format=torch (no runtime has a TRM architecture; the original's state_dict)",
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
    """Load `workdir`'s latest checkpoint for inference (weights only: `restore.load_for_inference`, no data or
    training pipeline) and write it as `config.export.format`; returns the output path."""
    fmt, quant = config.export.format, config.export.quant
    check_format(fmt, config.model.family, quant)  # before any I/O
    restored = restore.load_for_inference(restore.inference_source(workdir, config), config)
    check_format(fmt, restored.family.name, quant)  # the family the checkpoint holds
    model, tokenizer = restored.model, restored.tokenizer
    out = output_path(config, workdir)
    if jax.process_index() != 0:
        return out
    if fmt == "torch" and restored.family.name == "hrm":
        torch_hrm.export_torch_hrm(model, out, batch_size=restored.config.data.global_batch_size)
    elif fmt == "torch" and restored.family.name == "trm":
        torch_trm.export_torch_trm(model, out, batch_size=restored.config.data.global_batch_size)
    elif fmt == "torch":
        hf.save_pretrained(model, out)
    else:
        if tokenizer is None:
            raise ExportError(f"export.format={fmt!r}: {workdir} has no tokenizer to embed")
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
    logging.info("export: step %d of %s -> %s (%s)", restored.step, workdir, out, fmt)
    return out
