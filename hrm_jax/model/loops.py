"""Recurrence as one compiled loop body: `repeat_without_gradient` runs a gradient-free cycle n times in a
`lax.fori_loop`, `repeat_with_gradient` a graded one (reverse-mode differentiable: the trip count is static, so
the loop lowers to a scan), so the compiled graph (and compile time) stays the same size whatever n is. The
modules' state rides in the loop carry and is merged inside the loop's trace (NNX modules are not closed over
across traces); so does a generation KV-cache hook (`hrm_jax.generate.CacheWriter`), whose site index the trips
advance."""

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
    out = _loop(n, lambda m, value, _: cycle(m, value), modules, carry, kv_cache, gradient=False)
    return jax.lax.stop_gradient(out)


def repeat_with_gradient(n: int, cycle: Callable, modules, carry, kv_cache=None):
    """`carry = cycle(modules, carry, i)` for trips i = 0 .. n-1 (n static; `i` a traced int32), differentiated
    like the unrolled Python loop with respect to `carry` and the modules' state. `modules` and `kv_cache` as in
    `repeat_without_gradient`."""
    if n <= 0:
        return carry
    return _loop(n, cycle, modules, carry, kv_cache, gradient=True)


def _loop(n: int, cycle: Callable, modules, carry, kv_cache, *, gradient: bool):
    graph, state = nnx.split(modules)
    calls_before = None if kv_cache is None else kv_cache.calls

    def body(i, loop_carry):
        value, module_state, cache_carry = loop_carry
        if kv_cache is not None:
            kv_cache.set_carry(cache_carry)
            kv_cache.calls = calls_before
        value = cycle(nnx.merge(graph, module_state), value, i)
        return value, module_state, None if kv_cache is None else kv_cache.carry()

    init = (carry, state) if gradient else (jax.lax.stop_gradient(carry), jax.lax.stop_gradient(state))
    out, _, cache_carry = jax.lax.fori_loop(0, n, body, (*init, None if kv_cache is None else kv_cache.carry()))
    if kv_cache is not None:
        calls_per_trip = kv_cache.calls - calls_before
        kv_cache.set_carry(cache_carry)
        kv_cache.calls = calls_before + n * calls_per_trip
    return out
