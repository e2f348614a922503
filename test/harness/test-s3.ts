/**
 * What S3 storage tests use to reach the test S3 server. `run-tests.ts` starts one (see
 * `servers/s3-server.ts`) and exports `DBWARD_TEST_S3_URL` =
 * `http://<access key id>:<secret access key>@<host>:<port>/<bucket>`; set it yourself to use
 * another S3-compatible server (the bucket must exist and the key must be allowed everything in it).
 */
const envName = 'DBWARD_TEST_S3_URL';

export interface TestS3 {
  /** e.g. `http://127.0.0.1:40123` */
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** The test S3 server from `DBWARD_TEST_S3_URL`, or undefined when there is none. */
export function testS3(url: string | undefined = process.env[envName]): TestS3 | undefined {
  if (!url) return undefined;
  const u = new URL(url);
  return {
    endpoint: `${u.protocol}//${u.host}`,
    bucket: u.pathname.replace(/^\/+|\/+$/g, ''),
    accessKeyId: decodeURIComponent(u.username),
    secretAccessKey: decodeURIComponent(u.password),
    region: 'us-east-1',
  };
}

/** A reason to skip S3 tests, or false. Under CI=true the runner already failed without a server. */
export function s3SkipReason(): string | false {
  return process.env[envName] ? false : `s3: no test server (set ${envName} or install moto for python3)`;
}
