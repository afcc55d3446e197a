"""Gradient-free recurrence as one compiled loop body: `repeat_without_gradient` runs a cycle n times in a
`lax.fori_loop`, so the compiled graph (and compile time) stays the same size whatever n is. The modules' state
rides in the loop carry and is merged inside the loop's trace (NNX modules are not closed over across traces)."""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import nnx


def repeat_without_gradient(n: int, cycle: Callable, modules, carry):
    """`carry = cycle(modules, carry)` n times (n static), none of it differentiated: the result equals the
    unrolled Python loop under `stop_gradient` (n = 0: `carry` under `stop_gradient`). `modules`: an NNX module
    or a tuple of them, read only."""
    if n <= 0:
        return jax.lax.stop_gradient(carry)
    graph, state = nnx.split(modules)

    def body(_, loop_carry):
        value, module_state = loop_carry
        return cycle(nnx.merge(graph, module_state), value), module_state

    out, _ = jax.lax.fori_loop(0, n, body, (jax.lax.stop_gradient(carry), jax.lax.stop_gradient(state)))
    return jax.lax.stop_gradient(out)
