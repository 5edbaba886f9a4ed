// Lists every skipped test at the end of a run, with its full name: each skip names its
// reason there (no GPU, no python3-torch, no Chromium, no c10d, no fixtures for this
// libtorch), so a skip is never silent. Jest's default reporter shows only a count.
const path = require('node:path');

class SkipReporter {
  constructor(globalConfig) {
    this.root = globalConfig.rootDir;
    // With -t, the tests filtered out count as skipped too: nothing to explain then.
    this.filtered = Boolean(globalConfig.testNamePattern);
  }

  onRunComplete(_contexts, results) {
    if (this.filtered) return;
    const lines = [];
    for (const file of results.testResults) {
      for (const t of file.testResults) {
        if (t.status === 'pending' || t.status === 'skipped' || t.status === 'todo') {
          lines.push(`  ${path.relative(this.root, file.testFilePath)}: ${t.fullName}`);
        }
      }
    }
    if (lines.length === 0) return;
    process.stderr.write(`\nSkipped (${lines.length}), each with its reason:\n${lines.join('\n')}\n`);
  }
}

module.exports = SkipReporter;
