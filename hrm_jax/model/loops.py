"""Gradient-free recurrence as one compiled loop body: `repeat_without_gradient` runs a cycle n times in a
`lax.fori_loop`, so the compiled graph (and compile time) stays the same size whatever n is. The modules' state
rides in the loop carry and is merged inside the loop's trace (NNX modules are not closed over across traces);
so does a generation KV-cache hook (`hrm_jax.generate.CacheWriter`), whose site index the trips advance."""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import nnx


def repeat_without_gradient(n: int, cycle: Callable, modules, carry, kv_cache=None):
    """`carry = cycle(modules, carry)` n times (n static), none of it differentiated: the result equals the
    unrolled Python loop under `stop_gradient` (n = 0: `carry` under `stop_gradient`). `modules`: an NNX module
    or a tuple of them, read only. `kv_cache`: the hook `cycle` passes to its attention calls (it needs
    `carry()`, `set_carry()` and a static `calls` count); on return it holds the n trips' writes, exactly as if
    the calls had been unrolled."""
    if n <= 0:
        return jax.lax.stop_gradient(carry)
    graph, state = nnx.split(modules)
    calls_before = None if kv_cache is None else kv_cache.calls

    def body(_, loop_carry):
        value, module_state, cache_carry = loop_carry
        if kv_cache is not None:
            kv_cache.set_carry(cache_carry)
            kv_cache.calls = calls_before
        value = cycle(nnx.merge(graph, module_state), value)
        return value, module_state, None if kv_cache is None else kv_cache.carry()

    init = (jax.lax.stop_gradient(carry), jax.lax.stop_gradient(state),
            None if kv_cache is None else kv_cache.carry())
    out, _, cache_carry = jax.lax.fori_loop(0, n, body, init)
    if kv_cache is not None:
        calls_per_trip = kv_cache.calls - calls_before
        kv_cache.set_carry(cache_carry)
        kv_cache.calls = calls_before + n * calls_per_trip
    return jax.lax.stop_gradient(out)
