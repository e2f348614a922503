/**
 * A throwaway S3-compatible server for the test run: moto's standalone server (`moto.server`, from
 * the Python that has moto installed) on a free 127.0.0.1 port, with one bucket.
 *
 * Why moto: it implements what dbward's S3 storage relies on — multipart upload, including
 * ListMultipartUploads and AbortMultipartUpload, ListObjectsV2, CopyObject, DeleteObject(s) — and
 * it checks SigV4 signatures against real IAM access keys when authentication is on, so a wrong
 * secret fails as it does on AWS. (npm's s3rver answers NotImplemented to ListMultipartUploads and
 * cannot abort an upload; Debian 12 packages no S3 server short of a Ceph cluster.)
 *
 * A small launcher script creates an IAM user with an access key and an allow-all S3 policy inside
 * moto's in-memory backend before it serves, and writes the key to a 0600 file in the private temp
 * dir; the secret is never in any argument. Objects live in moto's memory (big ones spill to temp
 * files). With `{ authenticate: true }` moto checks every request's signature against that key.
 * The shared server runs without: moto 5.2's signature check rejects valid requests whose query
 * holds a `/` (ListObjectsV2 with Prefix=`a/b/`, which dbward sends), so tests of wrong
 * credentials start a server of their own with authentication on and a storage at the bucket's
 * root.
 *
 * The result's `adminUrl` is `http://<access key>:<secret>@127.0.0.1:<port>/<bucket>`; tests read
 * it through `test/harness/test-s3.ts`.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  discardDir,
  errorMessage,
  makeServerDir,
  ServerProcess,
  withPortRetry,
  writePrivateFile,
} from './server-process.js';
import type { StartedServer, StartResult } from './server-process.js';

export const testBucket = 'dbward-test';
const region = 'us-east-1';

/** The launcher: set moto's settings, create the IAM user and key, write them out, then serve. */
const launcher = `
import json, os, sys
port, key_file, authenticate = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if authenticate:
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"  # check every request's signature
os.environ["MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"] = str(8 * 1024 * 1024)  # spill big objects to disk
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from moto.s3.models import s3_backends
iam = iam_backends[DEFAULT_ACCOUNT_ID]["global"]
iam.create_user("${region}", "dbward-test")
iam.put_user_policy("dbward-test", "s3", json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
key = iam.create_access_key("dbward-test")
s3_backends[DEFAULT_ACCOUNT_ID]["aws"].create_bucket("${testBucket}", "${region}")
fd = os.open(key_file + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump({"accessKeyId": key.access_key_id, "secretAccessKey": key.secret_access_key}, f)
os.rename(key_file + ".tmp", key_file)
from moto.server import main
main(["-H", "127.0.0.1", "-p", port])
`;

interface MotoPython {
  python: string;
  version: string;
}

/** The real interpreter (not a pyenv shim, which needs our HOME) of a python3 that has moto. */
function findMotoPython(): Promise<MotoPython | undefined> {
  const probe = 'import sys, moto, moto.server; print(sys.executable); print(moto.__version__)';
  return new Promise((resolve) => {
    execFile('python3', ['-c', probe], { timeout: 30_000 }, (error, stdout) => {
      const [python, version] = stdout.trim().split('\n');
      resolve(!error && python && version ? { python, version } : undefined);
    });
  });
}

export async function start(options: { authenticate?: boolean } = {}): Promise<StartResult> {
  const moto = await findMotoPython();
  if (!moto) {
    return { skip: "s3: python3 with moto (moto's server) not found; install moto[server] for python3" };
  }
  // moto runs as ourselves: it needs no privileges and touches nothing outside its dir.
  const dir = makeServerDir('dbward-s3-', undefined);
  try {
    const logFile = path.join(dir, 'moto.log');
    const script = path.join(dir, 'launch.py');
    writePrivateFile(script, launcher, undefined);
    const { proc, port, keys } = await withPortRetry(async (port) => {
      const keyFile = path.join(dir, `keys-${port}.json`);
      const proc = new ServerProcess(
        'moto',
        moto.python,
        [script, String(port), keyFile, options.authenticate ? '1' : '0'],
        {
          dir,
          runAs: undefined,
          logFile,
        },
      );
      try {
        const keys = await proc.waitUntilReady(() => ready(port, keyFile), 60_000, 100);
        return { proc, port, keys };
      } catch (error) {
        await proc.stop({ keepDir: true });
        const log = readFileSync(logFile, 'utf8');
        // moto (werkzeug) reports a taken port this way; withPortRetry then tries another.
        if (/Address already in use/i.test(log))
          throw new Error(`address already in use: ${port}`, { cause: error });
        throw error;
      }
    });
    const server: StartedServer = {
      version: `moto ${moto.version} (S3${options.authenticate ? ', signatures checked' : ''})`,
      port,
      adminUrl: `http://${encodeURIComponent(keys.accessKeyId)}:${encodeURIComponent(keys.secretAccessKey)}@127.0.0.1:${port}/${testBucket}`,
      env: {},
      notes: [],
      stop: () => proc.stop({ timeoutMs: 5000 }),
    };
    return server;
  } catch (error) {
    discardDir(dir);
    return { skip: `s3: failed to start: ${errorMessage(error)}` };
  }
}

/** Ready once the key file is written and the server answers HTTP. */
async function ready(
  port: number,
  keyFile: string,
): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const keys = JSON.parse(readFileSync(keyFile, 'utf8')) as { accessKeyId: string; secretAccessKey: string };
  // An unsigned request is refused (403) once moto serves; any HTTP answer means it is up.
  const response = await fetch(`http://127.0.0.1:${port}/moto-api/`, { signal: AbortSignal.timeout(2000) });
  await response.body?.cancel();
  return keys;
}
