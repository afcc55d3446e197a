'use strict';
// The judge's jest reporter (evals/polyglot_harness.py). Loaded in jest's own realm before any test file, it
// reads the run's secret from stdin (a socket the driver filled) and keeps it in this closure; per test it
// reports "<secret> <pass|fail|skip> <full name>" on the same socket. The test's realm reaches node's shared
// core modules, so the write path is pinned first: fs.writeSync is held here and the fs binding's writeString
// (what it calls) cannot be replaced, else a candidate's replacement would see, or rewrite, each line.
const fs = require('fs');

const { readSync, writeSync } = fs;
const binding = process.binding('fs');
Object.defineProperty(binding, 'writeString', { value: binding.writeString, writable: false, configurable: false });

const report = (() => {
  const buffer = Buffer.alloc(32);
  let n = 0;
  while (n < buffer.length) {
    let k;
    try {
      k = readSync(0, buffer, n, buffer.length - n, null);
    } catch (error) {
      if (error.code === 'EAGAIN') continue;
      break;
    }
    if (k <= 0) break;
    n += k;
  }
  const secret = buffer.toString('latin1', 0, n);
  return (status, name) => writeSync(0, `${secret} ${status} ${name.replace(/\s+/g, ' ').slice(0, 300)}\n`);
})();

class HrmReporter {
  onTestResult(_test, result) {
    for (const test of result.testResults) {
      report(test.status === 'passed' ? 'pass' : test.status === 'failed' ? 'fail' : 'skip', test.fullName);
    }
  }
}

module.exports = HrmReporter;
