/**
 * POST a JSON body with a timeout and one retry — the transport of webhook and Slack channels.
 * Retries only what a retry can fix: network errors, timeouts, 408, 429 and 5xx. Any other answer
 * (a 404 for a deleted Slack hook, a 401) fails at once.
 */
import { errorText, headerSecrets, scrub, urlSecrets } from './secret-scrub.js';

export interface PostJsonOptions {
  headers?: Record<string, string>;
  timeoutMs: number;
  retryDelayMs: number;
}

/** Resolves when the endpoint answered 2xx; rejects with a message free of the URL's secrets. */
export async function postJson(url: string, body: unknown, options: PostJsonOptions): Promise<void> {
  const secrets = [...urlSecrets(url), ...headerSecrets(options.headers)];
  const payload = JSON.stringify(body);
  let lastProblem = '';
  for (let attempt = 1; attempt <= 2; attempt++) {
    if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, options.retryDelayMs));
    const result = await postOnce(url, payload, options);
    if (result.ok) return;
    lastProblem = scrub(result.problem, secrets);
    if (!result.retryable) break;
    if (attempt === 2) lastProblem += ' (after a retry)';
  }
  throw new Error(lastProblem);
}

type Attempt = { ok: true } | { ok: false; retryable: boolean; problem: string };

async function postOnce(url: string, payload: string, options: PostJsonOptions): Promise<Attempt> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'dbward', ...options.headers },
      body: payload,
      signal: AbortSignal.timeout(options.timeoutMs),
      redirect: 'error',
    });
    // The body is small for every hook we know; read it for the reason (Slack says e.g. `no_service`).
    const text = (await response.text()).trim().slice(0, 200);
    if (response.ok) return { ok: true };
    const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
    return {
      ok: false,
      retryable: response.status === 408 || response.status === 429 || response.status >= 500,
      problem: `answered ${status}${text ? `: ${text}` : ''}`,
    };
  } catch (err) {
    const timedOut = err instanceof Error && err.name === 'TimeoutError';
    return {
      ok: false,
      retryable: true,
      problem: timedOut
        ? `did not answer within ${options.timeoutMs} ms`
        : `could not be reached: ${errorText(err)}`,
    };
  }
}
