import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { keyPattern } from '../../src/engines/redis/redis-key-patterns.js';
import { keyPatternStats } from '../../src/engines/redis/redis-pattern-stats.js';
import { parseKeyspaces, parseRedisInfo } from '../../src/engines/redis/redis-info.js';

describe('redis key patterns', () => {
  const cases: [string, string][] = [
    ['user:42:cart', 'user:*:cart'],
    ['user:42', 'user:*'],
    ['session:5f1c9a0e3b7d4e2f8a6c1b0d9e8f7a6b', 'session:*'],
    ['session:0b9e6c1a-3f4d-4e5b-8a7c-9d0e1f2a3b4c', 'session:*'],
    ['queue:jobs:7', 'queue:jobs:*'],
    ['order:507f1f77bcf86cd799439011', 'order:*'],
    ['stats:daily:2024-01-31', 'stats:daily:*'],
    ['log:2024-01-31T10:11:12.345Z:web', 'log:*:web'],
    ['token:dGhpcyBpcyBhIHRva2VuMTIz', 'token:*'],
    ['reset:Xy7_kP2-qR9zLm4nB8vC', 'reset:*'],
    ['email:bob@example.com', 'email:*'],
    ['ip:10.0.0.1', 'ip:*.*.*.*'],
    ['item_99', 'item_*'],
    ['page-3/comments/1200', 'page-*/comments/*'],
    ['{user:42}:followers', '{user:*}:followers'],
    ['cache:v2:home', 'cache:v2:home'],
    ['user:alice', 'user:alice'],
    ['report_2024_q1_summary', 'report_*_q1_summary'],
    ['deadbeef', 'deadbeef'],
    ['counter', 'counter'],
    ['', ''],
  ];
  for (const [key, pattern] of cases) {
    it(`${key || '(empty)'} → ${pattern || '(empty)'}`, () => assert.equal(keyPattern(key), pattern));
  }
});

describe('redis pattern statistics', () => {
  const sample = (key: string, type: string, hasTtl: boolean, bytes: number) => ({
    key,
    type,
    hasTtl,
    bytes,
  });

  it('counts exactly when the sample is the whole keyspace', () => {
    const stats = keyPatternStats(
      2,
      {
        complete: true,
        samples: [
          sample('user:1', 'hash', true, 100),
          sample('user:2', 'hash', false, 100),
          sample('user:3', 'string', false, 10),
          sample('big', 'zset', false, 1000),
        ],
      },
      4,
    );
    assert.deepEqual(stats, [
      {
        db: 2,
        pattern: 'big',
        type: 'zset',
        sampledKeys: 1,
        estimatedKeys: 1,
        estimatedBytes: 1000,
        ttlCoverage: 0,
      },
      {
        db: 2,
        pattern: 'user:*',
        type: 'hash',
        sampledKeys: 2,
        estimatedKeys: 2,
        estimatedBytes: 200,
        ttlCoverage: 0.5,
      },
      {
        db: 2,
        pattern: 'user:*',
        type: 'string',
        sampledKeys: 1,
        estimatedKeys: 1,
        estimatedBytes: 10,
        ttlCoverage: 0,
      },
    ]);
  });

  it('extrapolates a partial sample to the database size', () => {
    const stats = keyPatternStats(
      0,
      { complete: false, samples: [sample('a:1', 'string', true, 50), sample('b:1', 'string', false, 30)] },
      1000,
    );
    assert.deepEqual(
      stats.map((s) => [s.pattern, s.sampledKeys, s.estimatedKeys, s.estimatedBytes, s.ttlCoverage]),
      [
        ['a:*', 1, 500, 25_000, 1],
        ['b:*', 1, 500, 15_000, 0],
      ],
    );
  });
});

describe('redis INFO parsing', () => {
  it('reads fields and keyspaces, with avg_ttl 0 as unknown', () => {
    const info = '# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\r\n';
    assert.equal(parseRedisInfo(info).get('redis_version'), '7.0.15');
    const keyspace =
      '# Keyspace\r\ndb0:keys=12,expires=0,avg_ttl=0\r\ndb3:keys=360,expires=300,avg_ttl=598123,subexpiry=0\r\n';
    assert.deepEqual(parseKeyspaces(keyspace), [
      { db: 0, keys: 12, keysWithExpiry: 0, avgTtlMs: null },
      { db: 3, keys: 360, keysWithExpiry: 300, avgTtlMs: 598123 },
    ]);
  });
});
