import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load-config.js';
import { selectTargets } from '../../src/config/select-targets.js';
import { ConfigError } from '../../src/core/errors.js';

function dir(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'dbward-config-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), text);
  }
  return root;
}

const rejects = (promise: Promise<unknown>, check: (err: ConfigError) => boolean): Promise<void> =>
  assert.rejects(promise, (err: unknown) => err instanceof ConfigError && check(err));

describe('loadConfig', () => {
  it('resolves migrations and seeds settings per target, over the top-level defaults', async () => {
    const root = dir({
      'config/dbward.config.json': JSON.stringify({
        migrations: { dir: '../db/migrations', table: 'schema_history' },
        seeds: { dir: '../db/seeds' },
        targets: {
          app: 'sqlite:app.db',
          cache: { url: 'redis://h/0', migrations: { dir: '../redis/migrations', schemaFile: false } },
        },
      }),
    });
    const config = await loadConfig({ cwd: path.join(root, 'config'), env: {} });
    const [app, cache] = config.targets;
    // Paths are relative to the config file's folder, so commands work from any cwd.
    assert.deepEqual(app!.migrations, { dir: path.join(root, 'db/migrations'), table: 'schema_history' });
    assert.deepEqual(app!.seeds, { dir: path.join(root, 'db/seeds') });
    assert.deepEqual(cache!.migrations, {
      dir: path.join(root, 'redis/migrations'),
      table: 'schema_history',
      schemaFile: false,
    });
    await rejects(
      loadConfig({
        cwd: dir({
          'dbward.config.json': '{"targets":{"a":{"url":"sqlite:a.db","migrations":{"folder":"x"}}}}',
        }),
        env: {},
      }),
      (err) => /folder/.test(err.message),
    );
  });

  it('uses DATABASE_URL alone when there is no config file', async () => {
    const config = await loadConfig({ cwd: dir({}), env: { DATABASE_URL: 'postgres://app:pw@db/app' } });
    assert.equal(config.targets.length, 1);
    assert.equal(config.targets[0]!.name, 'main');
    assert.equal(config.source, 'DATABASE_URL');
    assert.ok(!config.targets[0]!.displayUrl.includes(':pw@'));
  });

  it('--url wins over config files and DATABASE_URL', async () => {
    const root = dir({ 'dbward.config.json': '{"targets":{"a":"sqlite:a.db"}}' });
    const config = await loadConfig({
      cwd: root,
      url: 'redis://h/0',
      env: { DATABASE_URL: 'postgres://h/db' },
    });
    assert.deepEqual(
      config.targets.map((t) => [t.name, t.url]),
      [['main', 'redis://h/0']],
    );
  });

  it('finds dbward.config.* upward from the cwd and applies options', async () => {
    const root = dir({
      'dbward.config.json': JSON.stringify({
        defaultTarget: 'app',
        targets: {
          app: { url: 'postgres://u@h/app', pool: { max: 3, idleTimeout: '5s' }, connectTimeout: '2s' },
          cache: 'redis://h:6379/1',
        },
      }),
      'nested/deeper/.keep': '',
    });
    const config = await loadConfig({ cwd: path.join(root, 'nested/deeper'), env: {} });
    assert.equal(config.file, path.join(root, 'dbward.config.json'));
    assert.equal(config.defaultTarget, 'app');
    const app = config.targets.find((t) => t.name === 'app')!;
    assert.equal(app.options.pool.max, 3);
    assert.equal(app.options.pool.idleTimeoutMs, 5000);
    assert.equal(app.options.connectTimeoutMs, 2000);
    assert.equal(config.targets.find((t) => t.name === 'cache')!.options.pool.max, 10);
  });

  it('loads a TypeScript config with defineConfig and environment overrides', async () => {
    const helper = path.resolve('src/config/config-schema.ts');
    const root = dir({
      'dbward.config.ts': `import { defineConfig } from ${JSON.stringify(helper)};
const port: number = 5433;
export default defineConfig({
  targets: { main: \`postgres://u@localhost:\${port}/dev\` },
  $production: { targets: { main: 'postgres://u@prod-db/app' } },
});`,
    });
    const dev = await loadConfig({ cwd: root, env: {} });
    assert.equal(dev.targets[0]!.url, 'postgres://u@localhost:5433/dev');
    const prod = await loadConfig({ cwd: root, env: { DBWARD_ENV: 'production' } });
    assert.equal(prod.targets[0]!.url, 'postgres://u@prod-db/app');
  });

  it('interpolates ${VAR} from the environment and from .env next to the config', async () => {
    const root = dir({
      'dbward.config.json': '{"targets":{"main":"postgres://app:${DB_PASSWORD}@${DB_HOST:-localhost}/app"}}',
      '.env': 'DB_PASSWORD=fromDotenv\n',
    });
    const env: NodeJS.ProcessEnv = {};
    const config = await loadConfig({ cwd: root, env });
    assert.equal(config.targets[0]!.url, 'postgres://app:fromDotenv@localhost/app');
    // The real environment wins over .env.
    const env2: NodeJS.ProcessEnv = { DB_PASSWORD: 'fromEnv', DB_HOST: 'db' };
    assert.equal(
      (await loadConfig({ cwd: root, env: env2 })).targets[0]!.url,
      'postgres://app:fromEnv@db/app',
    );
  });

  it('names the file and key when a variable is missing', async () => {
    const root = dir({ 'dbward.config.json': '{"targets":{"main":{"url":"postgres://${NOPE_HOST}/db"}}}' });
    await rejects(
      loadConfig({ cwd: root, env: {} }),
      (e) =>
        e.message.includes('targets.main.url') &&
        e.message.includes('NOPE_HOST') &&
        e.file!.endsWith('.json'),
    );
  });

  it('rejects unknown keys and wrong types, naming the key and what was expected', async () => {
    const unknownKey = dir({ 'dbward.config.json': '{"targets":{"main":{"url":"sqlite:a.db","poool":{}}}}' });
    await rejects(loadConfig({ cwd: unknownKey, env: {} }), (e) => e.message.includes('"poool"'));
    const wrongType = dir({
      'dbward.config.json': '{"targets":{"main":{"url":"sqlite:a.db","pool":{"max":"ten"}}}}',
    });
    await rejects(
      loadConfig({ cwd: wrongType, env: {} }),
      (e) => e.key === 'targets.main.pool.max' && /number/i.test(e.message),
    );
    const badDuration = dir({
      'dbward.config.json': '{"targets":{"main":{"url":"sqlite:a.db","connectTimeout":"soon"}}}',
    });
    await rejects(loadConfig({ cwd: badDuration, env: {} }), (e) => e.message.includes('connectTimeout'));
  });

  it('rejects an unknown URL scheme in config, naming the key', async () => {
    const root = dir({ 'dbward.config.json': '{"targets":{"main":"oracle://scott:tiger42@h/db"}}' });
    await rejects(
      loadConfig({ cwd: root, env: {} }),
      (e) =>
        e.message.includes('targets.main') && e.message.includes('oracle') && !e.message.includes('tiger42'),
    );
  });

  it('reports a config file with a syntax error, and a missing --config file', async () => {
    const root = dir({ 'dbward.config.json': '{"targets": {' });
    await rejects(loadConfig({ cwd: root, env: {} }), (e) => e.message.includes('Could not load'));
    await rejects(
      loadConfig({ cwd: root, configFile: 'nope.json', env: {} }),
      (e) => e.message.includes('Config file not found') && e.message.includes('nope.json'),
    );
  });

  it('rejects a defaultTarget that is not a target', async () => {
    const root = dir({ 'dbward.config.json': '{"defaultTarget":"x","targets":{"a":"sqlite:a.db"}}' });
    await rejects(
      loadConfig({ cwd: root, env: {} }),
      (e) => e.key === 'defaultTarget' && !!e.hint?.includes('a'),
    );
  });
});

describe('selectTargets', () => {
  it('picks named targets, the default, or all; unknown names list the choices', async () => {
    const root = dir({ 'dbward.config.json': '{"targets":{"a":"sqlite:a.db","b":"sqlite:b.db"}}' });
    const config = await loadConfig({ cwd: root, env: {} });
    assert.deepEqual(
      selectTargets(config, ['b']).map((t) => t.name),
      ['b'],
    );
    assert.deepEqual(
      selectTargets(config, [], true).map((t) => t.name),
      ['a', 'b'],
    );
    assert.throws(() => selectTargets(config, []), /none is the default/);
    assert.throws(
      () => selectTargets(config, ['zz']),
      (e: unknown) => e instanceof ConfigError && !!e.hint?.includes('a, b'),
    );
  });

  it('says how to configure a database when nothing is configured', async () => {
    const config = await loadConfig({ cwd: dir({}), env: {} });
    assert.throws(
      () => selectTargets(config, []),
      (e: unknown) => e instanceof ConfigError && !!e.hint?.includes('DATABASE_URL'),
    );
  });
});
