import { pause } from './pause';

/** How hard one request is retried. Passed in (the node's default, or a test's faster one). */
export interface RetryPolicy {
	/** Attempts per request, the first one included. */
	maxAttempts: number;
	/** No retry starts later than this after the first attempt. */
	maxRetryTimeMs: number;
	baseDelayMs: number;
	maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
	maxAttempts: 5,
	maxRetryTimeMs: 120_000,
	baseDelayMs: 1_000,
	maxDelayMs: 30_000,
});

/** Exponential backoff with full jitter, so many items retrying at once do not hit the API in step. */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
	const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
	return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/**
 * The wait before the attempt after `attempt`, or undefined when retrying is over: the attempts are
 * used up, or the wait would end past the time budget or the run's deadline. A long `Retry-After`
 * therefore ends the retries at once instead of holding the workflow for as long as the server asks.
 */
export function retryDelay(
	policy: RetryPolicy,
	attempt: number,
	startedAt: number,
	retryAfterMs?: number,
	deadlineAt = Infinity,
): number | undefined {
	if (attempt >= policy.maxAttempts) return undefined;
	const delay = retryAfterMs ?? backoffDelay(policy, attempt);
	const now = Date.now();
	if (now - startedAt + delay > policy.maxRetryTimeMs || now + delay > deadlineAt) return undefined;
	return delay;
}

/** `Retry-After` as seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: unknown): number | undefined {
	if (typeof value !== 'string' && typeof value !== 'number') return undefined;
	const seconds = Number(value);
	if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
	const date = Date.parse(String(value));
	return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** The retries left to one request: counts attempts from its first one. */
export class RetryBudget {
	private attempt = 1;

	private readonly startedAt = Date.now();

	/** `deadlineAt`: no wait may end after it (epoch ms). */
	constructor(
		private readonly policy: RetryPolicy,
		private readonly deadlineAt?: number,
	) {}

	/** Spends a retry: the wait before it, or undefined when retrying is over. */
	next(retryAfterMs?: number): number | undefined {
		const delay = retryDelay(this.policy, this.attempt, this.startedAt, retryAfterMs, this.deadlineAt);
		if (delay !== undefined) this.attempt++;
		return delay;
	}
}

/** Pauses; a stop of the run during the pause becomes the caller's own error. */
export async function pauseUnlessStopped(
	ms: number,
	signal: AbortSignal | undefined,
	stoppedError: () => Error,
): Promise<void> {
	try {
		await pause(ms, signal);
	} catch {
		throw stoppedError();
	}
}

/** What one attempt came to: a result, or a retry after a wait it has taken from the budget. */
export type Attempt<T> = { done: T } | { retryInMs: number };

/** How long one request may keep retrying, and what stops it. */
export interface RetryLimits {
	retry: RetryPolicy;
	signal?: AbortSignal;
	/** No wait ends after this moment (epoch ms). */
	deadlineAt?: number;
}

/**
 * The one retry loop for API calls and downloads. Each attempt decides for itself what may be
 * retried (and throws what may not); this loop only waits between attempts.
 */
export async function withRetries<T>(
	limits: RetryLimits,
	stoppedError: () => Error,
	attempt: (budget: RetryBudget) => Promise<Attempt<T>>,
): Promise<T> {
	const { retry: policy, signal } = limits;
	const budget = new RetryBudget(policy, limits.deadlineAt);
	for (;;) {
		const result = await attempt(budget);
		if ('done' in result) return result.done;
		await pauseUnlessStopped(result.retryInMs, signal, stoppedError);
	}
}
