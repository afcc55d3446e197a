'use strict';
// The judge's jest reporter (evals/polyglot_harness.py). Loaded in jest's own realm before any test file, it
// reads the run's secret from stdin (a socket the driver filled) and keeps it in this closure; per test it
// reports "<secret> <pass|fail|skip> <full name>" on the same socket.
const fs = require('fs');

const report = (() => {
  const buffer = Buffer.alloc(32);
  let n = 0;
  while (n < buffer.length) {
    let k;
    try {
      k = fs.readSync(0, buffer, n, buffer.length - n, null);
    } catch (error) {
      if (error.code === 'EAGAIN') continue;
      break;
    }
    if (k <= 0) break;
    n += k;
  }
  const secret = buffer.toString('latin1', 0, n);
  return (status, name) => fs.writeSync(0, `${secret} ${status} ${name.replace(/\s+/g, ' ').slice(0, 300)}\n`);
})();

class HrmReporter {
  onTestResult(_test, result) {
    for (const test of result.testResults) {
      report(test.status === 'passed' ? 'pass' : test.status === 'failed' ? 'fail' : 'skip', test.fullName);
    }
  }
}

module.exports = HrmReporter;
