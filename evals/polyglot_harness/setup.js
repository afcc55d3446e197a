'use strict';
// The judge's jest setup file (evals/polyglot_harness.py), run in the test's realm before the test file and
// the candidate's module: jest's globals, its matcher registry and the builtins its matchers compare with
// cannot be replaced or extended afterwards.
const matchers = Symbol.for('$$jest-matchers-object');
for (const name of ['expect', 'test', 'it', 'describe', 'xtest', 'xit', 'xdescribe', 'fit', 'fdescribe',
  'beforeAll', 'beforeEach', 'afterAll', 'afterEach', matchers]) {
  if (!(name in globalThis)) continue;
  const value = globalThis[name];
  Object.defineProperty(globalThis, name, { value, writable: false, configurable: false });
}
for (const value of [expect, test, it, describe, globalThis[matchers].matchers, Object, Array, Number, String,
  Reflect, JSON, Math]) {
  Object.freeze(value);
}
