"""The run configuration: one schema (`base_config`), validated once, then locked.

Every experiment file in `configs/` starts from `base_config()` and changes values, never keys, so an unknown
`--config.a.b=v` override is an error (config_flags locks the dict). `validate(config)` checks values and names the
bad field; data-derived model fields (vocabulary, sequence length, puzzle identifiers) are filled from the dataset
by `hrm_config(config, data_meta)` (and `hrm_text_config`, `trm_config`, `transformer_config`).

`model` holds `family`, the fields every family shares (`forward_dtype`, `attention_impl`, `loss_type`) and one
node per family: `model.hrm`, `model.hrm_text`, `model.trm`, `model.transformer`.
"""

from __future__ import annotations

import json

import ml_collections

from hrm_jax.model.layers import swiglu_intermediate_size

from hrm_jax.model.hrm import HRMConfig
from hrm_jax.model.hrm_text import HrmTextConfig, preset as hrm_text_preset
from hrm_jax.model.hrm_text import num_params as hrm_text_num_params
from hrm_jax.model.transformer import TransformerConfig
from hrm_jax.model.trm import TRMConfig
from hrm_jax.sizing import (SIZE_BY, SizeReference, hrm_forward_flops_per_token, hrm_num_params,
                            hrm_text_forward_flops_per_token, size_transformer)

MODES = ("train", "eval", "export", "recipe", "srl")
FAMILIES = ("hrm", "hrm_text", "trm", "transformer")
PUZZLE_FAMILIES = ("hrm", "trm", "transformer")  # families that also train on puzzle / synthetic batches
CODE_DATA_KINDS = ("python_corpus", "code_corpus", "mbpp", "edit_sft", "edit_actions")
DATA_KINDS = ("synthetic", "puzzle", *CODE_DATA_KINDS)
# HRM-Text fields `model.hrm_text` may override on top of its preset (None = the preset's value), with their types.
HRM_TEXT_OVERRIDES = (("hidden_size", int), ("intermediate_size", int), ("num_layers_per_stack", int),
                      ("num_attention_heads", int), ("head_dim", int), ("H_cycles", int), ("L_cycles", int),
                      ("L_bp_cycles", tuple), ("prefix_lm", bool), ("tie_word_embeddings", bool),
                      ("rms_norm_eps", float))
LOSS_TYPES = ("", "stablemax_cross_entropy", "softmax_cross_entropy")
# The shared `model.*` fields (the rest of `model` is `family` and one node per family).
SHARED_MODEL_FIELDS = ("forward_dtype", "attention_impl", "loss_type")
# The flat `model.*` layout before one node per family (restore.migrate_flat_model reads checkpoints of it): HRM's
# fields (now `model.hrm`), those the transformer also read (now also `model.transformer`), and HRM-Text's.
FLAT_HRM_FIELDS = ("H_cycles", "L_cycles", "H_layers", "L_layers", "hidden_size", "expansion", "num_heads",
                   "pos_encodings", "puzzle_emb_ndim", "rms_norm_eps", "rope_theta", "halt_max_steps",
                   "halt_exploration_prob", "causal", "generation_segments", "causal_act_halting")
FLAT_TRANSFORMER_FIELDS = ("pos_encodings", "puzzle_emb_ndim", "rms_norm_eps", "rope_theta", "halt_exploration_prob")
FLAT_HRM_TEXT_FIELDS = {"hrm_text_preset": "preset", "hrm_text_init": "init", "remat": "remat"}


def moved_field(name: str) -> str | None:
    """Where a flat-layout field lives now (`model.hrm_text_preset` -> `model.hrm_text.preset`), else None."""
    parts = name.split(".")
    if len(parts) != 2 or parts[0] != "model":
        return None
    if parts[1] in FLAT_HRM_TEXT_FIELDS:
        return f"model.hrm_text.{FLAT_HRM_TEXT_FIELDS[parts[1]]}"
    if parts[1] in FLAT_TRANSFORMER_FIELDS:
        return f"model.hrm.{parts[1]} (or model.transformer.{parts[1]} for the transformer)"
    return f"model.hrm.{parts[1]}" if parts[1] in FLAT_HRM_FIELDS else None


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.mode = "train"
    c.seed = 0
    c.init_from = ""  # a checkpoint directory (params only) to start from; this run's own checkpoints win

    # Model: `family` picks one of the per-family nodes below; the fields after it are shared by the families
    # (each family's docstring in families.py says which it uses). A config file may prepare the nodes of other
    # families (so `--config.model.family=X` switches); validate() refuses settings the chosen family ignores.
    c.model = ml_collections.ConfigDict()
    c.model.family = "hrm"
    c.model.forward_dtype = "bfloat16"  # every family
    c.model.attention_impl = ""  # every family: "" (XLA default), "xla" or "cudnn"
    # The ACT loss head (hrm, trm, the transformer on puzzles): "" = stablemax on puzzles (the original's
    # hrm_v1.yaml), softmax on code. HRM-Text and the causal transformer always train with softmax CE.
    c.model.loss_type = ""

    # HRM (family "hrm"): the original's hrm_v1.yaml; vocab/seq/identifiers come from the data.
    c.model.hrm = ml_collections.ConfigDict()
    c.model.hrm.H_cycles = 2
    c.model.hrm.L_cycles = 2
    c.model.hrm.H_layers = 4
    c.model.hrm.L_layers = 4
    c.model.hrm.hidden_size = 512
    c.model.hrm.expansion = 4.0
    c.model.hrm.num_heads = 8
    c.model.hrm.pos_encodings = "rope"  # rope | learned
    c.model.hrm.puzzle_emb_ndim = 512
    c.model.hrm.rms_norm_eps = 1e-5
    c.model.hrm.rope_theta = 10000.0
    c.model.hrm.halt_max_steps = 16
    c.model.hrm.halt_exploration_prob = 0.1
    c.model.hrm.causal = False  # True: a causal LM for code data
    c.model.hrm.generation_segments = 0  # causal: segments per generated token (0 = halt_max_steps)
    # Causal HRM: train with ACT (Q-learned) halting instead of exactly generation_segments (default
    # halt_max_steps) segments per example. NOT causal: the Q head reads the last position, so halting and the
    # carry reset depend on later tokens, and generation (fixed segments) then differs from training.
    c.model.hrm.causal_act_halting = False
    c.model.hrm.loop_cycles = False  # the gradient-free cycles as one lax.fori_loop (compile time flat in cycles)

    # HRM-Text (family "hrm_text"): a preset (code-30m, code-100m, hrm-text-1b) plus optional overrides
    # (None = the preset's value).
    c.model.hrm_text = ml_collections.ConfigDict()
    c.model.hrm_text.preset = "code-30m"
    c.model.hrm_text.init = "authors"  # "authors" (truncated LeCun, HRM_TEXT_TRAINING 3.5) or "transformers"
    # The authors' backprop-depth warm-up (HRM_TEXT_TRAINING 3.4): gradient through bp_min_steps module calls
    # at first, one more per (ratio / (max - min)) of train.steps, up to the routing's; 0 = off (authors: 0.2).
    c.model.hrm_text.bp_warmup_ratio = 0.0
    c.model.hrm_text.bp_min_steps = 2
    # Each cycle's gradient-free L calls as one lax.fori_loop, and H cycles of one routing as one differentiated
    # loop: compile time flat in cycles. Pair it with remat at many H cycles (benchmarks/RESULTS.md: without
    # remat the loop over graded cycles keeps ~20% more activations at 8 H cycles; with it, less).
    c.model.hrm_text.loop_cycles = False
    c.model.hrm_text.remat = False  # recompute each block in the backward pass (less memory, ~1 more forward)
    # what a rematerialized block keeps: nothing_saveable | dots_saveable | dots_with_no_batch_dims_saveable
    c.model.hrm_text.remat_policy = "nothing_saveable"
    # Recompute each H cycle in the backward pass, keeping only its input (z_H, z_L): activation memory of one
    # cycle instead of all; with remat too, the recomputation is per block (benchmarks/RESULTS.md).
    c.model.hrm_text.remat_cycles = False
    # Each stack's blocks as one lax.scan over their weights stacked per step: compile time flat in the layer
    # count, one more copy of the stacks' parameters in memory; parameters, checkpoints and exports unchanged.
    c.model.hrm_text.scan_layers = False
    for key, kind in HRM_TEXT_OVERRIDES:
        c.model.hrm_text[key] = ml_collections.FieldReference(None, field_type=kind)

    # TRM (family "trm"): config/arch/trm.yaml's values; vocab/seq/identifiers come from the data.
    c.model.trm = ml_collections.ConfigDict()
    c.model.trm.H_cycles = 3  # T
    c.model.trm.L_cycles = 6  # n
    c.model.trm.L_layers = 2
    c.model.trm.hidden_size = 512
    c.model.trm.expansion = 4.0
    c.model.trm.num_heads = 8
    c.model.trm.pos_encodings = "rope"  # rope | learned | none (mlp_t: none)
    c.model.trm.puzzle_emb_ndim = 512
    c.model.trm.puzzle_emb_len = 16  # leading positions for the puzzle vector (zero-filled after it)
    c.model.trm.mlp_t = False  # the MLP-mixer variant: a SwiGLU along the sequence instead of attention
    c.model.trm.no_ACT_continue = True  # halt when q_halt > 0; no Q-continue target, no second forward
    c.model.trm.halt_max_steps = 16
    c.model.trm.halt_exploration_prob = 0.1
    c.model.trm.rms_norm_eps = 1e-5
    c.model.trm.rope_theta = 10000.0
    c.model.trm.causal = False  # True: a causal LM for code data
    c.model.trm.generation_segments = 0  # causal generation: segments per token (0 = halt_max_steps)
    c.model.trm.loop_cycles = False  # the T-1 gradient-free cycles as one lax.fori_loop (compile time flat in T)

    # The transformer baseline (family "transformer"): one stack, sized against a reference family's model built
    # from its node of this same config (model.hrm or model.hrm_text). Width fields 0 = the reference's.
    c.model.transformer = ml_collections.ConfigDict()
    c.model.transformer.num_layers = 0  # 0 = sized to the reference by size_by
    c.model.transformer.size_by = "params"  # "params" (equal trainable parameters) or "flops" (forward, per token)
    c.model.transformer.reference = "auto"  # a family in SIZE_REFERENCES; auto = hrm_text on code, else hrm
    c.model.transformer.hidden_size = 0
    c.model.transformer.num_heads = 0
    c.model.transformer.head_dim = 0  # 0 = the reference's when the width and heads are, else hidden / heads
    c.model.transformer.intermediate_size = 0  # 0 = the reference's MLP width when the width is, else SwiGLU x4
    c.model.transformer.norm = "auto"  # auto: pre-norm for the causal LM (llama), post-norm on puzzles (TRM)
    c.model.transformer.pos_encodings = "rope"  # rope | learned
    c.model.transformer.puzzle_emb_ndim = 512  # puzzles only (the causal LM has no puzzle identifiers)
    c.model.transformer.rms_norm_eps = 1e-5
    c.model.transformer.rope_theta = 10000.0
    c.model.transformer.halt_max_steps = 1  # puzzles: ACT segments; 1 = a single segment (no ACT)
    c.model.transformer.halt_exploration_prob = 0.1

    c.data = ml_collections.ConfigDict()
    # puzzle: the original HRM on-disk format; synthetic: a generated sorting task; python_corpus: the embedded
    # Python corpus (pretraining); mbpp: MBPP instruction examples (fine-tuning).
    c.data.kind = "puzzle"
    c.data.path = ""  # puzzle: the dataset folder (train/, test/); python_corpus: the built corpus folder
    c.data.seq_len = 1024  # code kinds: packed row length
    c.data.tokenizer = ""  # code kinds: a SentencePiece .model; "" = <workdir>/tokenizer/code.model (built if absent)
    c.data.tokenizer_vocab_size = 16384  # when the tokenizer is built here
    c.data.tokenizer_sample_files = 0  # when built here: train on this many stdlib files (0 = all)
    c.data.corpus_validation_fraction = 0.01  # when the corpus is built here
    c.data.corpus_stdlib_subdirs = ()  # when the corpus is built here: only these stdlib packages (() = all roots)
    c.data.packing = "first_fit"  # or "concat_then_split"
    # code_corpus (six languages, configs/pretrain_code.py): sampling weight per language (0 = left out), and the
    # caps of a corpus built here (per language; 0 = none), its Python part from corpus_stdlib_subdirs
    c.data.language_weights = ml_collections.ConfigDict(
        {"cpp": 1.0, "go": 1.0, "java": 1.0, "javascript": 1.0, "python": 1.0, "rust": 1.0})
    c.data.corpus_max_files_per_language = 1500
    c.data.corpus_max_bytes_per_language = 12 << 20
    c.data.corpus_max_file_bytes = 500_000
    c.data.data_dir = ""  # folder holding mbpp/mbpp.jsonl ("" = $HRM_JAX_DATA_DIR, else download)
    # edit_sft / edit_actions (configs/edit_*.py): the codemod dataset folder (input_pipeline.build_codemods);
    # "" = <workdir>/codemods, built there from these stdlib packages (() = the whole standard library)
    c.data.edits_path = ""
    c.data.edits_stdlib_subdirs = ()
    c.data.generate = ""  # puzzle: "sudoku" or "maze" generates the dataset (into data.path or the workdir)
    c.data.generate_num_train = 1000
    c.data.generate_num_test = 1000
    c.data.generate_num_aug = 1000  # sudoku: augmented variants per train puzzle
    c.data.generate_min_rating = 18.0  # sudoku: difficulty filter (tdoku-style guesses; 18 gives Sudoku-Extreme's mean of ~22)
    c.data.generate_num_blanks = 0  # sudoku: > 0 = puzzles with exactly this many blanks (the easy end) instead of the rating climb (generate_min_rating unused)
    c.data.generate_per_grid = 10  # sudoku: puzzles kept per solution grid (neighbours, one split)
    c.data.generate_maze_size = 30
    c.data.generate_min_path_length = 110
    c.data.global_batch_size = 768
    c.data.num_workers = 0  # grain worker processes (JAX-free)
    c.data.synthetic_seq_len = 16
    c.data.synthetic_vocab = 10
    c.data.synthetic_num_identifiers = 1
    c.data.synthetic_size = 4096

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-4
    c.optim.lr_min_ratio = 1.0
    c.optim.lr_warmup_steps = 2000
    c.optim.beta1 = 0.9
    c.optim.beta2 = 0.95
    c.optim.weight_decay = 0.1
    c.optim.puzzle_emb_lr = 1e-2
    c.optim.puzzle_emb_weight_decay = 0.1
    c.optim.grad_clip_norm = 0.0  # 0 = off (the original does not clip)
    c.optim.ema_decay = 0.0  # parameter EMA (TRM: 0.999; HRM-Text authors: 0.9999); 0 = off. Eval/export use it.
    c.optim.grad_accum_steps = 1  # micro-batches per train step (gradients summed; 1 = one pass over the batch)

    c.train = ml_collections.ConfigDict()
    c.train.steps = 1000
    c.train.log_every = 50
    c.train.eval_every = 0  # 0 = only at the end
    c.train.eval_batches = 0  # 0 = the whole test split
    c.train.checkpoint_every = 500
    c.train.keep_latest = 2
    c.train.keep_every = 0  # also keep every K-th step's checkpoint forever (0 = none)
    c.train.async_checkpoint = True
    c.train.compilation_cache_dir = ""
    c.train.profile_start = 2  # the first step of the profiler window (after compilation)
    c.train.profile_steps = 0  # steps traced by the JAX profiler into <workdir>/profile; 0 = no trace

    c.mesh = ml_collections.ConfigDict()
    c.mesh.shape = (-1, 1, 1)  # (data, fsdp, tensor); one -1 is filled from the device count

    c.distributed = ml_collections.ConfigDict()
    c.distributed.enabled = False  # call jax.distributed.initialize (auto-detects SLURM / TPU pods)
    c.distributed.coordinator_address = ""
    c.distributed.num_processes = 0
    c.distributed.process_id = -1

    c.eval = ml_collections.ConfigDict()
    c.eval.adaptive = False  # False: the original's fixed halt_max_steps segments
    # Test-time compute for puzzle evaluation of HRM / TRM (hrm_jax/test_time.py); the defaults are the plain eval.
    c.eval.test_time = ml_collections.ConfigDict()
    c.eval.test_time.segments = 0  # absolute segment budget; 0 = segments_multiple x halt_max_steps
    c.eval.test_time.segments_multiple = 1
    c.eval.test_time.noise_scale = 0.0  # std of Gaussian noise on z_H / z_L
    c.eval.test_time.noise_per = "step"  # step: after every module call; segment: on the carry before each segment
    c.eval.test_time.trajectories = 1  # K trajectories per puzzle, batched on device
    c.eval.test_time.selection = "q_halt"  # q_halt | majority | oracle (an upper bound that reads the labels)
    c.eval.test_time.seed = 0
    # Causal HRM / TRM generation: segments per generated token at decode time (0 = the trained count).
    c.eval.generation_segments = 0
    # --config.mode=eval on code runs also runs a benchmark through the sandbox (evals/): "" = none.
    c.eval.benchmark = ""  # "mbpp" (split eval.split) or "humaneval"
    c.eval.split = "test"
    c.eval.n = 1  # samples per task; temperature 0 needs n = 1 (greedy pass@1)
    c.eval.ks = (1,)
    c.eval.temperature = 0.0
    c.eval.refine_rounds = 0  # execution-feedback rounds after a failed first attempt
    c.eval.limit = 0  # 0 = every task
    c.eval.max_new_tokens = 256

    c.export = ml_collections.ConfigDict()  # --config.mode=export (hrm_jax.export.run)
    c.export.format = "hf"  # hf | gguf (HRM-Text) | torch (puzzle HRM: original names; HRM-Text: HF weights)
    c.export.out = ""  # "" = <workdir>/export/<format>
    c.export.quant = "f16"  # gguf: f32 | f16 | q8_0 | q4_0
    return c


class ConfigError(ValueError):
    """A config value that cannot work; the message names the field."""


def _require(cond: bool, field: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"config.{field}: {message}")


def used_nodes(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """The `model.<family>` nodes the chosen family reads: its own, and for the transformer the node of the
    family it is sized against."""
    family = config.model.family
    return (family, size_reference_name(config)) if family == "transformer" else (family,)


def ignored_settings(config: ml_collections.ConfigDict, overrides=()) -> list[tuple[str, str]]:
    """(field, why) for each setting the chosen family would ignore: a shared field it does not use set away
    from its default, or an `overrides` entry (dotted names set on the command line, `model.trm.L_cycles`)
    in another family's node. A config file may prepare other families' nodes (that is how
    `--config.model.family=X` switches); the command line setting an unused node is a mistake."""
    family, code = config.model.family, config.data.kind in CODE_DATA_KINDS
    found = []
    if config.model.loss_type and (family == "hrm_text" or (family == "transformer" and code)):
        found.append(("model.loss_type", f"{config.model.loss_type!r} is ignored by model.family={family!r} (a "
                      "causal LM trained with softmax cross-entropy): leave it '' (the default)"))
    used = used_nodes(config)
    for name in overrides:
        parts = str(name).split(".")
        if len(parts) > 2 and parts[0] == "model" and parts[1] in FAMILIES and parts[1] not in used:
            found.append((name, f"set, but model.family={family!r} does not read model.{parts[1]} (it reads "
                          + " and ".join(f"model.{n}" for n in used) + ")"))
    return found


REMAT_POLICY_NAMES = ("nothing_saveable", "dots_saveable", "dots_with_no_batch_dims_saveable")  # layers.REMAT_POLICIES


def validate(config: ml_collections.ConfigDict, overrides=()) -> None:
    """Check every value; `overrides` (the dotted names set on the command line) also refuses a command-line
    setting of a node the chosen family ignores."""
    _require(config.mode in MODES, "mode", f"{config.mode!r} is not one of {MODES}")
    _require(config.model.family in FAMILIES, "model.family",
             f"{config.model.family!r} is not one of {FAMILIES} (an unknown model family)")
    _require(config.data.kind in DATA_KINDS, "data.kind", f"{config.data.kind!r} is not one of {DATA_KINDS}")
    _require(config.data.kind != "puzzle" or bool(config.data.path or config.data.generate), "data.path",
             "a puzzle dataset folder is needed (or data.generate='sudoku'|'maze')")
    code = config.data.kind in CODE_DATA_KINDS
    _require(code or config.model.family in PUZZLE_FAMILIES, "model.family",
             f"{config.model.family!r} is a language model: it needs code data (data.kind in {CODE_DATA_KINDS})")
    _require(config.model.loss_type in LOSS_TYPES, "model.loss_type",
             f"unknown loss {config.model.loss_type!r} (one of {LOSS_TYPES})")
    for field, why in ignored_settings(config, overrides):
        raise ConfigError(f"config.{field}: {why}")
    if config.model.family == "trm":
        t = config.model.trm
        _require(not (t.mlp_t and t.pos_encodings == "rope"), "model.trm.pos_encodings",
                 "mlp_t replaces attention, so there is nothing for RoPE to rotate: use 'none' (the original's "
                 "MLP setting) or 'learned'")
        _require(not (code and t.puzzle_emb_ndim), "model.trm.puzzle_emb_ndim",
                 "must be 0 for code data (there are no puzzle identifiers)")
        _require(not (code and not t.causal), "model.trm.causal", "code data trains a causal LM: set it True")
        _require(not (t.causal and t.mlp_t), "model.trm.mlp_t", "mixes every position: it cannot be causal")
    h = config.model.hrm
    _require(not (code and config.model.family == "hrm" and h.puzzle_emb_ndim),
             "model.hrm.puzzle_emb_ndim", "must be 0 for code data (there are no puzzle identifiers)")
    _require(not (code and config.model.family == "hrm" and not h.causal), "model.hrm.causal",
             "code data trains a causal LM: set model.hrm.causal=True")
    _require(not h.causal_act_halting or (config.model.family == "hrm" and h.causal),
             "model.hrm.causal_act_halting",
             "applies only to the causal HRM (model.family='hrm', model.hrm.causal=True)")
    _require(config.eval.benchmark in ("", "mbpp", "humaneval"), "eval.benchmark",
             f"{config.eval.benchmark!r} is not '', 'mbpp' or 'humaneval'")
    _require(not config.eval.benchmark or code, "eval.benchmark", "benchmarks need a code model (code data.kind)")
    decode_segments = config.eval.get("generation_segments", 0)
    _require(decode_segments >= 0, "eval.generation_segments", "must be >= 0 (0 = as trained)")
    _require(not decode_segments or (code and config.model.family in ("hrm", "trm")), "eval.generation_segments",
             "applies to causal HRM / TRM code runs (model.family 'hrm' or 'trm')")
    if "test_time" in config.eval:
        from hrm_jax import test_time  # noqa: PLC0415
        try:
            settings = test_time.from_config(config.eval.test_time)
        except ValueError as e:
            raise ConfigError(f"config.eval.{e}") from None
        _require(settings.is_plain or (not code and config.model.family in ("hrm", "trm")), "eval.test_time",
                 "test-time settings apply to puzzle HRM / TRM runs (model.family 'hrm' or 'trm', data.kind "
                 "'puzzle')")
    _require(config.model.hrm_text.init in ("authors", "transformers"), "model.hrm_text.init",
             f"{config.model.hrm_text.init!r} is not 'authors' or 'transformers'")
    _require(0.0 <= config.model.hrm_text.bp_warmup_ratio <= 1.0, "model.hrm_text.bp_warmup_ratio",
             "must be in [0, 1]")
    _require(config.model.hrm_text.bp_min_steps >= 1, "model.hrm_text.bp_min_steps", "must be >= 1")
    _require(config.model.hrm_text.remat_policy in REMAT_POLICY_NAMES, "model.hrm_text.remat_policy",
             f"{config.model.hrm_text.remat_policy!r} is not one of {REMAT_POLICY_NAMES}")
    _require(config.data.global_batch_size > 0, "data.global_batch_size", "must be positive")
    _require(config.train.steps > 0, "train.steps", "must be positive")
    _require(config.train.profile_steps >= 0 and config.train.profile_start >= 1, "train.profile_steps",
             "profile_steps must be >= 0 and profile_start >= 1")
    accum = config.optim.grad_accum_steps
    _require(accum >= 1, "optim.grad_accum_steps", f"{accum} must be >= 1")
    _require(config.data.global_batch_size % accum == 0, "optim.grad_accum_steps",
             f"data.global_batch_size {config.data.global_batch_size} is not divisible by {accum} micro-batches")
    _require(0.0 <= config.optim.ema_decay < 1.0, "optim.ema_decay", "must be in [0, 1)")
    _require(config.train.checkpoint_every >= 0, "train.checkpoint_every", "must be >= 0")
    _require(config.train.keep_latest >= 1, "train.keep_latest", "must be >= 1")
    _require(config.model.attention_impl in ("", "xla", "cudnn"), "model.attention_impl",
             f"{config.model.attention_impl!r} is not '', 'xla' or 'cudnn'")
    _require(len(tuple(config.mesh.shape)) == 3, "mesh.shape", "needs 3 entries (data, fsdp, tensor)")
    if config.model.family == "transformer":
        t = config.model.transformer
        _require(t.size_by in SIZE_BY, "model.transformer.size_by", f"{t.size_by!r} is not one of {SIZE_BY}")
        _require(t.norm in ("auto", "pre", "post"), "model.transformer.norm", f"{t.norm!r} is not auto, pre or post")
        _require(t.reference == "auto" or t.reference in SIZE_REFERENCES, "model.transformer.reference",
                 f"{t.reference!r} is not 'auto' or one of {sorted(SIZE_REFERENCES)}")
        _require(not (code and t.norm == "post"), "model.transformer.norm",
                 "the causal transformer is pre-norm (llama's shape, exported as LlamaForCausalLM / GGUF llama)")
    try:
        if config.model.family == "hrm":
            hrm_config(config, {"vocab_size": 2, "seq_len": 1, "num_puzzle_identifiers": 1})
        elif config.model.family == "trm":
            trm_config(config, {"vocab_size": 2, "seq_len": 1, "num_puzzle_identifiers": 1})
        elif config.model.family == "transformer":
            transformer_config(config, {"vocab_size": 2, "seq_len": 2, "num_puzzle_identifiers": 1})
        else:
            hrm_text_config(config, {"vocab_size": 2, "seq_len": 1})
    except (ValueError, KeyError) as e:
        raise ConfigError(f"config.model: {e}") from None


def loss_type(config: ml_collections.ConfigDict) -> str:
    """The ACT loss head's loss: `model.loss_type`, "" = stablemax on puzzles (the original), softmax on code."""
    if config.model.loss_type:
        return config.model.loss_type
    return "softmax_cross_entropy" if config.data.kind in CODE_DATA_KINDS else "stablemax_cross_entropy"


def hrm_config(config: ml_collections.ConfigDict, data_meta: dict) -> HRMConfig:
    """The HRM config from `model.hrm`, the shared dtype / attention fields, and the dataset's vocab_size /
    seq_len / num_puzzle_identifiers."""
    h, m = config.model.hrm, config.model
    return HRMConfig(
        vocab_size=int(data_meta["vocab_size"]), seq_len=int(data_meta["seq_len"]),
        puzzle_emb_ndim=h.puzzle_emb_ndim, num_puzzle_identifiers=int(data_meta["num_puzzle_identifiers"]),
        H_cycles=h.H_cycles, L_cycles=h.L_cycles, H_layers=h.H_layers, L_layers=h.L_layers,
        hidden_size=h.hidden_size, expansion=h.expansion, num_heads=h.num_heads, pos_encodings=h.pos_encodings,
        rms_norm_eps=h.rms_norm_eps, rope_theta=h.rope_theta, halt_max_steps=h.halt_max_steps,
        halt_exploration_prob=h.halt_exploration_prob, forward_dtype=m.forward_dtype, causal=h.causal,
        attention_impl=m.attention_impl or None, generation_segments=h.generation_segments)


def trm_config(config: ml_collections.ConfigDict, data_meta: dict) -> TRMConfig:
    """The TRM config from `model.trm`, the shared dtype / attention fields, and the dataset's vocab_size /
    seq_len / num_puzzle_identifiers."""
    t, m = config.model.trm, config.model
    return TRMConfig(
        H_cycles=t.H_cycles, L_cycles=t.L_cycles, L_layers=t.L_layers, hidden_size=t.hidden_size,
        expansion=t.expansion, num_heads=t.num_heads, pos_encodings=t.pos_encodings,
        puzzle_emb_ndim=t.puzzle_emb_ndim, puzzle_emb_len=t.puzzle_emb_len, mlp_t=t.mlp_t,
        no_ACT_continue=t.no_ACT_continue, halt_max_steps=t.halt_max_steps,
        halt_exploration_prob=t.halt_exploration_prob, rms_norm_eps=t.rms_norm_eps, rope_theta=t.rope_theta,
        causal=t.causal, generation_segments=t.generation_segments, forward_dtype=m.forward_dtype,
        attention_impl=m.attention_impl or None, vocab_size=int(data_meta["vocab_size"]),
        seq_len=int(data_meta["seq_len"]), num_puzzle_identifiers=int(data_meta.get("num_puzzle_identifiers", 1)))


def hrm_text_config(config: ml_collections.ConfigDict, data_meta: dict) -> HrmTextConfig:
    """The HRM-Text config: `model.hrm_text.preset`, the node's overrides, and the tokenizer's vocabulary and
    special ids."""
    node = config.model.hrm_text
    base = hrm_text_preset(node.preset)
    changes = {key: node[key] for key, _ in HRM_TEXT_OVERRIDES if node[key] is not None}
    if "L_bp_cycles" in changes:
        changes["L_bp_cycles"] = tuple(int(x) for x in changes["L_bp_cycles"])
    changes["vocab_size"] = int(data_meta["vocab_size"])
    changes["max_position_embeddings"] = max(base.max_position_embeddings, int(data_meta["seq_len"]))
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if data_meta.get(key) is not None:
            changes[key] = int(data_meta[key])
    return base.replace(**changes)


def _hrm_reference(config: ml_collections.ConfigDict, data_meta: dict) -> SizeReference:
    c = hrm_config(config, {"num_puzzle_identifiers": 1, **data_meta})
    return SizeReference("hrm", hrm_num_params(c), hrm_forward_flops_per_token(c), c.hidden_size,
                         c.num_heads, c.head_dim, swiglu_intermediate_size(c.hidden_size, c.expansion))


def _hrm_text_reference(config: ml_collections.ConfigDict, data_meta: dict) -> SizeReference:
    c = hrm_text_config(config, data_meta)
    return SizeReference("hrm_text", hrm_text_num_params(c), hrm_text_forward_flops_per_token(c, data_meta["seq_len"]),
                         c.hidden_size, c.num_attention_heads, c.head_dim, c.intermediate_size)


# The families the transformer baseline can be sized against: name -> (run config, data meta) -> SizeReference.
SIZE_REFERENCES = {"hrm": _hrm_reference, "hrm_text": _hrm_text_reference}


def size_reference_name(config: ml_collections.ConfigDict) -> str:
    """The family the transformer is sized against: `model.transformer.reference`, auto = hrm_text on code."""
    name = config.model.transformer.reference
    if name == "auto":
        return "hrm_text" if config.data.kind in CODE_DATA_KINDS else "hrm"
    return name


def transformer_reference(config: ml_collections.ConfigDict, data_meta: dict) -> SizeReference:
    name = size_reference_name(config)
    if name not in SIZE_REFERENCES:
        raise ValueError(f"model.transformer.reference {name!r} is not one of {sorted(SIZE_REFERENCES)}")
    return SIZE_REFERENCES[name](config, data_meta)


def transformer_config(config: ml_collections.ConfigDict, data_meta: dict) -> tuple[TransformerConfig, SizeReference]:
    """The baseline's config and its reference: `model.transformer` (width 0 = the reference's), the shared
    dtype / attention fields, the data's vocabulary / length / ids, and the layer count sized to the reference
    unless set."""
    t, m = config.model.transformer, config.model
    ref = transformer_reference(config, data_meta)
    causal = config.data.kind in CODE_DATA_KINDS
    hidden, heads = t.hidden_size or ref.hidden_size, t.num_heads or ref.num_heads
    same_width = (hidden, heads) == (ref.hidden_size, ref.num_heads)
    if not t.head_dim and hidden % heads:
        raise ValueError(f"transformer hidden_size {hidden} is not divisible by num_heads {heads} (set head_dim)")
    head_dim = t.head_dim or (ref.head_dim if same_width else hidden // heads)
    inter = t.intermediate_size or (ref.intermediate_size if hidden == ref.hidden_size
                                    else swiglu_intermediate_size(hidden, 4.0))
    seq_len = int(data_meta["seq_len"])
    base = TransformerConfig(
        vocab_size=int(data_meta["vocab_size"]), seq_len=seq_len, num_layers=t.num_layers or 1, hidden_size=hidden,
        num_heads=heads, head_dim=head_dim, intermediate_size=inter, causal=causal,
        pre_norm=t.norm == "pre" or (t.norm == "auto" and causal),
        puzzle_emb_ndim=0 if causal else t.puzzle_emb_ndim,
        num_puzzle_identifiers=int(data_meta.get("num_puzzle_identifiers", 1)), pos_encodings=t.pos_encodings,
        rms_norm_eps=t.rms_norm_eps, rope_theta=t.rope_theta, halt_max_steps=t.halt_max_steps,
        halt_exploration_prob=t.halt_exploration_prob, forward_dtype=m.forward_dtype,
        attention_impl=m.attention_impl or None, max_position_embeddings=max(2048, seq_len),
        pad_token_id=data_meta.get("pad_token_id"), bos_token_id=data_meta.get("bos_token_id"),
        eos_token_id=data_meta.get("eos_token_id"))
    return (base if t.num_layers else size_transformer(base, ref, t.size_by)), ref


def to_json(config: ml_collections.ConfigDict) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=list)
