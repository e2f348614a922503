/**
 * CLI start-up: `node bin/dbward.js --version` against the bare runtime, `node -e 0`.
 *
 * Measures: a fresh process each run (new V8 isolate, module loading and commander set-up; the
 * OS file cache is warm after the warm-up runs). No driver may be loaded for --version.
 * Target: dbward's mean ≤ 3 × the mean of `node -e 0`.
 * Competitor (baseline): `node -e 0` with the same node binary.
 *
 *   node --import tsx bench/cli-startup.ts
 */
import { dbwardBin, measure, pick, report, runBenchmark } from './lib/bench-kit.js';

const node = process.execPath;

runBenchmark(async () => {
  const results = measure(
    [
      { name: 'node -e 0', argv: [node, '-e', '0'] },
      { name: 'dbward --version', argv: [node, dbwardBin, '--version'] },
    ],
    { warmup: 5, runs: 40, rssRuns: 5, env: process.env },
  );
  const baseline = pick(results, 'node -e 0');
  const dbward = pick(results, 'dbward --version');
  const ratio = dbward.mean / baseline.mean;
  report(results, {
    benchmark: 'cli-startup',
    subject: dbward,
    reference: baseline,
    target: `dbward --version ≤ 3× node -e 0 (measured ${ratio.toFixed(2)}×)`,
    pass: ratio <= 3,
  });
});
