/**
 * The walkthroughs in docs/ run as written, against a real PostgreSQL database, so the docs
 * cannot drift from what dbward does. A walkthrough is a sequence of fenced blocks:
 *
 * - ```` ```sql file=migrations/1_x.sql ```` (any language): write that file into the project;
 * - ```` ```console ```` with `$ dbward …` lines: run each command; the lines that follow a command
 *   are output it must print, in order (durations such as `(12 ms)` match any number). The info
 *   string `console exit=1` expects that exit code from the block's last command instead of 0.
 *
 * Other blocks are left alone; `$ export …` lines are skipped (the test sets DATABASE_URL).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { repoRoot, runCli } from '../helpers/run-cli.js';

interface Block {
  info: string;
  body: string;
  line: number;
}

function fencedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const fence = /^```([^\n]*)\n([\s\S]*?)^```$/gm;
  for (let m = fence.exec(markdown); m; m = fence.exec(markdown)) {
    blocks.push({
      info: m[1]!.trim(),
      body: m[2]!,
      line: markdown.slice(0, m.index).split('\n').length,
    });
  }
  return blocks;
}

/** Split a command line on spaces, keeping single- or double-quoted parts together. */
function words(command: string): string[] {
  return [...command.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

/** An expected output line as a pattern: literal text, with `(N ms)` matching any duration. */
function linePattern(expected: string): RegExp {
  const escaped = expected.trim().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // Table columns are padded to their widest cell: any run of spaces matches any other.
  return new RegExp(escaped.replace(/\d+ ms/g, '\\d+ ms').replace(/ +/g, '\\s+'));
}

const walkthroughs = ['docs/migrations.md', 'docs/seeds.md'];

for (const doc of walkthroughs) {
  describe(`${doc} walkthrough`, { skip: skipReason('postgres') }, () => {
    let database: TestDatabase;
    let project: string;
    beforeEach(async () => {
      database = await freshDatabase('postgres');
      project = mkdtempSync(path.join(tmpdir(), 'dbward-doc-'));
    });
    afterEach(async () => {
      await database?.cleanup();
      rmSync(project, { recursive: true, force: true });
    });

    it('runs as written and prints what it shows', async () => {
      const blocks = fencedBlocks(readFileSync(path.join(repoRoot, doc), 'utf8'));
      let commands = 0;
      for (const block of blocks) {
        const file = /\bfile=(\S+)/.exec(block.info)?.[1];
        if (file) {
          mkdirSync(path.dirname(path.join(project, file)), { recursive: true });
          writeFileSync(path.join(project, file), block.body);
          continue;
        }
        if (!block.info.startsWith('console')) continue;
        const exit = Number(/\bexit=(\d+)/.exec(block.info)?.[1] ?? 0);
        const steps: { command: string; expected: string[] }[] = [];
        for (const line of block.body.split('\n')) {
          if (line.startsWith('$ ')) steps.push({ command: line.slice(2), expected: [] });
          else if (line.trim() !== '') steps.at(-1)?.expected.push(line);
        }
        for (const [i, step] of steps.entries()) {
          if (step.command.startsWith('export ')) continue;
          const [program, ...args] = words(step.command);
          assert.equal(program, 'dbward', `${doc}:${block.line}: only dbward commands run here`);
          const run = await runCli(args, { cwd: project, env: { DATABASE_URL: database.url } });
          commands++;
          const where = `${doc}:${block.line}: $ ${step.command}\n${run.all}`;
          assert.equal(run.code, i === steps.length - 1 ? exit : 0, where);
          // Each expected line must appear, in order, in what the command printed.
          const printed = run.all.split('\n');
          let from = 0;
          for (const expected of step.expected) {
            const pattern = linePattern(expected);
            const at = printed.findIndex((l, n) => n >= from && pattern.test(l));
            assert.ok(at >= 0, `${where}\nexpected a line like: ${expected.trim()}`);
            from = at + 1;
          }
        }
      }
      assert.ok(commands >= 3, `${doc} has a walkthrough with dbward commands`);
    });
  });
}
