"""Recurrence as one compiled loop body: `repeat_without_gradient` runs a gradient-free cycle n times in a
`lax.fori_loop`, `repeat_with_gradient` a graded one (reverse-mode differentiable: the trip count is static, so
the loop lowers to a scan), so the compiled graph (and compile time) stays the same size whatever n is. The
modules' state rides in the loop carry and is merged inside the loop's trace (NNX modules are not closed over
across traces); so does a generation KV-cache hook (`hrm_jax.generate.CacheWriter`), whose site index the trips
advance."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
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


def scan_modules(modules, step: Callable, carry, kv_cache=None):
    """`carry = step(module, carry)` for each module of `modules` in order (NNX modules of one structure, e.g. a
    stack's blocks), differentiated like the Python loop: their states stacked on a leading axis are the
    `lax.scan`'s xs, so the compiled graph holds one step whatever the count (at the cost of the stacked copy of
    their state). `kv_cache` as in `repeat_without_gradient`."""
    graphs, states = zip(*(nnx.split(m) for m in modules))
    if any(g != graphs[0] for g in graphs[1:]):
        raise ValueError("scan_modules: the modules differ in structure; a scan needs one")
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    calls_before = None if kv_cache is None else kv_cache.calls

    def body(scan_carry, state):
        value, cache_carry = scan_carry
        _enter(kv_cache, cache_carry, calls_before)
        value = step(nnx.merge(graphs[0], state), value)
        return (value, None if kv_cache is None else kv_cache.carry()), None

    (out, cache_carry), _ = jax.lax.scan(body, (carry, None if kv_cache is None else kv_cache.carry()), stacked)
    _leave(kv_cache, cache_carry, calls_before, len(modules))
    return out


def _loop(n: int, cycle: Callable, modules, carry, kv_cache, *, gradient: bool):
    graph, state = nnx.split(modules)
    calls_before = None if kv_cache is None else kv_cache.calls

    def body(i, loop_carry):
        value, module_state, cache_carry = loop_carry
        _enter(kv_cache, cache_carry, calls_before)
        value = cycle(nnx.merge(graph, module_state), value, i)
        return value, module_state, None if kv_cache is None else kv_cache.carry()

    init = (carry, state) if gradient else (jax.lax.stop_gradient(carry), jax.lax.stop_gradient(state))
    out, _, cache_carry = jax.lax.fori_loop(0, n, body, (*init, None if kv_cache is None else kv_cache.carry()))
    _leave(kv_cache, cache_carry, calls_before, n)
    return out


def _enter(kv_cache, cache_carry, calls_before) -> None:
    """A trip starts: the cache hook takes the loop's carry and the call count the first trip started from."""
    if kv_cache is not None:
        kv_cache.set_carry(cache_carry)
        kv_cache.calls = calls_before


def _leave(kv_cache, cache_carry, calls_before, trips: int) -> None:
    """After the loop: the hook holds every trip's writes and counts every trip's calls (the trace saw one)."""
    if kv_cache is not None:
        calls_per_trip = kv_cache.calls - calls_before
        kv_cache.set_carry(cache_carry)
        kv_cache.calls = calls_before + trips * calls_per_trip
