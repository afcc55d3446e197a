"""fill_accuracy: per-cell accuracy on the cells a puzzle asks to fill in (label != input), beside the
headline cell accuracy that also counts the copied givens."""

import jax.numpy as jnp
import numpy as np

from hrm_jax import evaluation, families, losses


def _one_hot_logits(predictions, vocab=11):
    return jnp.asarray(np.eye(vocab, dtype=np.float32)[np.asarray(predictions)])


def test_fill_cells_are_where_the_label_differs_from_the_input():
    inputs = np.array([[5, 1, 1, 7, 1, 3]])   # 1 = blank; givens 5, 7, 3
    labels = np.array([[5, 4, 6, 7, 2, losses.IGNORE_LABEL_ID]])
    predicted = np.array([[5, 4, 9, 7, 9, 3]])  # givens copied; one blank of three right
    m = families._token_metrics(_one_hot_logits(predicted), jnp.asarray(labels), jnp.asarray(inputs))
    assert int(m["tokens"]) == 5 and int(m["correct_tokens"]) == 3
    assert int(m["fill_cells"]) == 3 and int(m["correct_fill_cells"]) == 1
    averaged = {k: float(v.compute()) for k, v in evaluation._as_averages(
        {k: np.asarray(v) for k, v in m.items()} | {"count": np.asarray(1)}).items()}
    assert averaged["token_accuracy"] == 3 / 5 and averaged["fill_accuracy"] == 1 / 3
    assert "fill_cells" not in averaged


def test_code_batches_have_no_fill_cells_but_a_loss():
    labels = jnp.asarray([[3, 4, losses.IGNORE_LABEL_ID]])
    m = families._token_metrics(_one_hot_logits([[3, 0, 0]]), labels)
    assert set(m) == {"tokens", "correct_tokens", "loss_sum"}  # loss_sum: eval/loss of causal HRM / TRM
    expected = losses.softmax_cross_entropy(_one_hot_logits([[3, 0, 0]]), labels).sum()
    assert float(m["loss_sum"]) == float(expected) > 0
