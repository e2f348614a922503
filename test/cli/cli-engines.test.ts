/**
 * The CLI against real servers on every engine: targets, ping, inspect, and the failures users
 * hit most (wrong password, missing database) — with the password never in any output.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SchemaModel } from '../../src/core/schema-model.js';
import { allTestEngines, freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { runCli, withPassword } from '../helpers/run-cli.js';

const wrongPassword = 'Wr0ngPassw0rdXyz';

for (const engine of allTestEngines) {
  describe(`CLI on ${engine}`, { skip: skipReason(engine) }, () => {
    let database: TestDatabase;
    before(async () => {
      database = await freshDatabase(engine);
    });
    after(async () => {
      await database?.cleanup();
    });

    it('ping: exit 0 with the server version and latency', async () => {
      const r = await runCli(['ping'], { env: { DATABASE_URL: database.url } });
      assert.equal(r.code, 0, r.all);
      assert.match(r.stdout, /^main: ok \S+.*, \d+\.\d ms$/m);
    });

    it('inspect --json: the model, with the real password nowhere in it', async () => {
      const r = await runCli(['inspect', '--json'], { env: { DATABASE_URL: database.url } });
      assert.equal(r.code, 0, r.all);
      const model = JSON.parse(r.stdout) as SchemaModel;
      assert.equal(model.engine, engine);
      const password = new URL(database.url).password;
      if (password) assert.ok(!r.all.includes(decodeURIComponent(password)));
    });

    it('targets --json: reachable targets and a diagnosed unreachable one', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'dbward-targets-'));
      writeFileSync(
        path.join(dir, 'dbward.config.json'),
        JSON.stringify({
          defaultTarget: 'app',
          targets: { app: database.url, gone: { url: 'postgres://u@127.0.0.1:1/x', connectTimeout: '2s' } },
        }),
      );
      const r = await runCli(['targets', '--json'], { cwd: dir });
      assert.equal(r.code, 3, r.all);
      const out = JSON.parse(r.stdout) as {
        targets: {
          name: string;
          reachable: boolean;
          default: boolean;
          url: string;
          error?: { code: string };
        }[];
      };
      const app = out.targets.find((t) => t.name === 'app')!;
      assert.equal(app.reachable, true);
      assert.equal(app.default, true);
      const gone = out.targets.find((t) => t.name === 'gone')!;
      assert.equal(gone.reachable, false);
      assert.equal(gone.error?.code, 'E_CONNECT_REFUSED');
      const password = new URL(database.url).password;
      if (password) {
        assert.ok(app.url.includes('*****'));
        assert.ok(!r.all.includes(decodeURIComponent(password)));
      }
    });

    if (engine !== 'sqlite') {
      it('wrong password: exit 3, "Authentication failed", the password nowhere, even --verbose --json', async () => {
        const url = withPassword(database.url, wrongPassword);
        for (const args of [['ping'], ['inspect', '--json'], ['ping', '--verbose']]) {
          const r = await runCli(args, { env: { DATABASE_URL: url } });
          assert.equal(r.code, 3, r.all);
          assert.match(r.all, /Authentication failed/);
          assert.ok(!r.all.includes(wrongPassword), `${args.join(' ')} printed the password`);
        }
      });

      it('missing database: exit 3, says it does not exist', async () => {
        const url = new URL(database.url);
        url.pathname = engine === 'redis' ? '/999' : '/dbward_no_such_db';
        const r = await runCli(['ping'], { env: { DATABASE_URL: url.toString() } });
        assert.equal(r.code, 3, r.all);
        assert.match(r.all, /does not exist|out of range/);
      });
    }
  });
}
