"""hrm_jax.generate on HRM-Text: cached decoding equals full recomputation, greedy tokens equal transformers'
generate() on the same tiny random weights, sampling is seeded and filtered, rows stop on their own stop tokens."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from flax import nnx  # noqa: E402
from transformers import HrmTextConfig as HFConfig  # noqa: E402
from transformers import HrmTextForCausalLM  # noqa: E402

from hrm_jax import generate as gen  # noqa: E402
from hrm_jax import hf  # noqa: E402
from hrm_jax.model.hrm_text import HrmText, HrmTextConfig  # noqa: E402

torch.set_num_threads(2)

TINY = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
            head_dim=8, H_cycles=2, L_cycles=2, L_bp_cycles=[0, 2], max_position_embeddings=128, pad_token_id=0)
PAD = 0
N_NEW = 32  # one prompt width (7) and length everywhere: the compiled loop is reused across tests


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    ref = HrmTextForCausalLM(HFConfig(**TINY)).eval()
    with torch.no_grad():
        ref.model.z_L_init.normal_()
        ref.lm_head.weight.mul_(10.0)  # sharper logits: fewer near-ties for greedy comparisons
    config = HrmTextConfig.from_hf_dict(TINY)
    model = hf.load_state_dict(nnx.eval_shape(lambda: HrmText(config, rngs=nnx.Rngs(0))), ref.state_dict())
    return ref, model


def prompts(lengths, seed=0, prefix=0):
    """Left-padded prompts [B, S], their mask, and token types (1 on the first `prefix` real tokens)."""
    rng = np.random.default_rng(seed)
    s = max(lengths)
    ids, mask, tt = np.full((len(lengths), s), PAD), np.zeros((len(lengths), s), np.int64), None
    if prefix:
        tt = np.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, s - n:] = rng.integers(3, 64, size=n)
        mask[row, s - n:] = 1
        if prefix:
            tt[row, s - n:s - n + prefix] = 1
    return ids, mask, tt


@pytest.mark.parametrize("prefix", [0, 3], ids=["causal", "prefix"])
def test_cached_logits_equal_full_recomputation(models, prefix):
    _, model = models
    ids, mask, tt = prompts([5, 7], seed=1, prefix=prefix)
    steps = 64
    forced = np.random.default_rng(2).integers(3, 64, size=(2, steps))
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, ids, mask, tt, forced):
        m = nnx.merge(graphdef, state)
        cache = gen.init_cache(m, ids.shape[0], ids.shape[1] + steps)
        logits, position, cache = gen.prefill(m, cache, ids, mask, tt)

        def step(carry, token):
            position, cache = carry
            logits, cache = gen.decode_step(m, cache, token, position + 1)
            return (position + 1, cache), logits

        _, decoded = jax.lax.scan(step, (position, cache), forced.T)
        return logits, jnp.swapaxes(decoded, 0, 1)

    j = lambda a: None if a is None else jnp.asarray(a)  # noqa: E731
    prefill_logits, decoded = run(state, j(ids), j(mask), j(tt), j(forced))
    # Full forward over prompt + forced tokens: generated tokens causal (tt 0), positions cumsum - 1.
    full_ids = np.concatenate([ids, forced], axis=1)
    full_mask = np.concatenate([mask, np.ones_like(forced)], axis=1)
    full_tt = None if tt is None else np.concatenate([tt, np.zeros_like(forced)], axis=1)
    positions = np.maximum(np.cumsum(full_mask, axis=1) - 1, 0)
    full = np.asarray(model(j(full_ids), j(full_tt), j(full_mask), j(positions)))
    s = ids.shape[1]
    real = mask.astype(bool)
    assert np.abs(np.asarray(prefill_logits) - full[:, :s])[real].max() <= 1e-5
    assert np.abs(np.asarray(decoded) - full[:, s:]).max() <= 1e-5


@pytest.mark.parametrize("prefix", [0, 3], ids=["causal", "prefix"])
def test_greedy_equals_transformers_generate(models, prefix):
    ref, model = models
    ids, mask, tt = prompts([7, 4], seed=3, prefix=prefix)
    kwargs = {} if tt is None else {"token_type_ids": torch.from_numpy(tt)}
    with torch.no_grad():
        want = ref.generate(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), do_sample=False,
                            max_new_tokens=N_NEW, min_new_tokens=N_NEW, eos_token_id=None, pad_token_id=PAD,
                            use_cache=True, **kwargs)[:, ids.shape[1]:].numpy()
    out = gen.generate(model, ids, gen.SamplingConfig(max_new_tokens=N_NEW, pad_token_id=PAD), attention_mask_BS=mask,
                       token_type_ids_BS=tt)
    np.testing.assert_array_equal(np.asarray(out.tokens_BN), want)
    np.testing.assert_array_equal(np.asarray(out.num_tokens_B), [N_NEW, N_NEW])


def test_left_padded_row_equals_unpadded(models):
    _, model = models
    ids, mask, _ = prompts([7, 3], seed=4)
    batched = gen.generate(model, ids, gen.SamplingConfig(max_new_tokens=N_NEW), attention_mask_BS=mask)
    alone = gen.generate(model, ids[1:, -3:], gen.SamplingConfig(max_new_tokens=N_NEW))
    np.testing.assert_array_equal(np.asarray(batched.tokens_BN[1]), np.asarray(alone.tokens_BN[0]))


def test_per_row_stop_tokens(models):
    _, model = models
    ids, mask, _ = prompts([7, 5], seed=5)
    free = np.asarray(gen.generate(model, ids, gen.SamplingConfig(max_new_tokens=N_NEW), attention_mask_BS=mask)
                      .tokens_BN)
    k = next(k for k in range(1, N_NEW) if free[0, k] not in free[0, :k])  # row 0 stops after k + 1 tokens
    stop = int(free[0, k])
    want_len = [k + 1, list(free[1]).index(stop) + 1 if stop in free[1] else N_NEW]
    assert want_len[1] != want_len[0], "rows should stop at different steps"
    out = gen.generate(model, ids, gen.SamplingConfig(max_new_tokens=N_NEW, stop_tokens=(stop,), pad_token_id=PAD),
                       attention_mask_BS=mask)
    tokens = np.asarray(out.tokens_BN)
    np.testing.assert_array_equal(np.asarray(out.num_tokens_B), want_len)
    for row, n in enumerate(want_len):
        np.testing.assert_array_equal(tokens[row, :n], free[row, :n])
        assert np.all(tokens[row, n:] == PAD)


def test_sampling_is_seeded(models):
    _, model = models
    ids, mask, _ = prompts([7, 4], seed=6)
    hot = gen.SamplingConfig(max_new_tokens=N_NEW, temperature=5.0)
    a = gen.generate(model, ids, hot, attention_mask_BS=mask, rng=jax.random.key(1)).tokens_BN
    b = gen.generate(model, ids, hot, attention_mask_BS=mask, rng=jax.random.key(1)).tokens_BN
    c = gen.generate(model, ids, hot, attention_mask_BS=mask, rng=jax.random.key(2)).tokens_BN
    np.testing.assert_array_equal(a, b)
    assert np.any(np.asarray(a) != np.asarray(c))
    greedy = gen.generate(model, ids, gen.SamplingConfig(max_new_tokens=N_NEW), attention_mask_BS=mask).tokens_BN
    for narrow in (gen.SamplingConfig(max_new_tokens=N_NEW, temperature=5.0, top_k=1),
                   gen.SamplingConfig(max_new_tokens=N_NEW, temperature=5.0, top_p=1e-6)):
        np.testing.assert_array_equal(gen.generate(model, ids, narrow, attention_mask_BS=mask,
                                                   rng=jax.random.key(3)).tokens_BN, greedy)


def test_sample_filters():
    logits = jnp.log(jnp.asarray([[0.5, 0.3, 0.15, 0.05]] * 2000))
    draw = lambda temperature=1.0, top_k=0, top_p=1.0: set(np.asarray(gen.sample(  # noqa: E731
        logits, jax.random.key(0), temperature, top_k, top_p)).tolist())
    assert draw(top_k=2) == {0, 1}
    assert draw(top_p=0.7) == {0, 1}  # 0.5 < 0.7 <= 0.8: the two most likely
    assert draw(top_p=0.5) == {0}
    assert draw(top_k=3, top_p=0.9) == {0, 1, 2}
    assert draw() == {0, 1, 2, 3} and draw(temperature=0.0) == {0}
    tokens = np.asarray(gen.sample(logits, jax.random.key(0), 1.0, 0, 1.0))
    assert abs(np.mean(tokens == 0) - 0.5) < 0.05
    with pytest.raises(ValueError, match="top_p"):
        gen.SamplingConfig(max_new_tokens=1, top_p=0.0)


def test_cache_sites_follow_transformers_slots(models):
    """One KV site per (H cycle, stack call, layer), filled in transformers' slot order."""
    _, model = models
    cache = gen.init_cache(model, 1, 4)
    assert len(cache.k) == model.config.num_hidden_layers == 2 * 2 * 3
    ids = jnp.asarray([[5, 6, 7]])
    _, _, cache = gen.prefill(model, cache, ids)
    with torch.no_grad():
        out = models[0](input_ids=torch.from_numpy(np.array(ids)), use_cache=True)
    for slot, layer in enumerate(out.past_key_values.layers):  # HF keys [B, N, T, H]
        want = layer.keys.numpy().transpose(0, 2, 1, 3)
        assert np.abs(np.asarray(cache.k[slot][:, :3]) - want).max() <= 1e-5, slot
