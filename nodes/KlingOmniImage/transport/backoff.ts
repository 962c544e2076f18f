import { pause } from '../helpers/sleep';

export const RETRY = {
	/** Attempts per request, the first one included. */
	maxAttempts: 5,
	/** No retry starts later than this after the first attempt. */
	maxRetryTimeMs: 120_000,
	baseDelayMs: 1_000,
	maxDelayMs: 30_000,
};

/** Exponential backoff with full jitter, so many items retrying at once do not hit the API in step. */
export function backoffDelay(attempt: number): number {
	const ceiling = Math.min(RETRY.maxDelayMs, RETRY.baseDelayMs * 2 ** (attempt - 1));
	return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/**
 * The wait before the attempt after `attempt`, or undefined when retrying is over: the attempts are
 * used up, or the wait would end past the time budget. A long `Retry-After` therefore ends the
 * retries at once instead of holding the workflow for as long as the server asks.
 */
export function retryDelay(attempt: number, startedAt: number, retryAfterMs?: number): number | undefined {
	if (attempt >= RETRY.maxAttempts) return undefined;
	const delay = retryAfterMs ?? backoffDelay(attempt);
	if (Date.now() - startedAt + delay > RETRY.maxRetryTimeMs) return undefined;
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

/**
 * One pause shared by every request of an execution: a 429 for one item holds back all items, so a
 * batch slows down together instead of each item hammering the API on its own schedule.
 */
export class BackoffGate {
	private resumeAt = 0;

	/** `ms` comes from retryDelay, which already keeps it within the retry time budget. */
	pauseFor(ms: number): void {
		this.resumeAt = Math.max(this.resumeAt, Date.now() + Math.min(ms, RETRY.maxRetryTimeMs));
	}

	async whenOpen(signal?: AbortSignal): Promise<void> {
		let wait = this.resumeAt - Date.now();
		while (wait > 0) {
			await pause(wait, signal);
			wait = this.resumeAt - Date.now();
		}
	}
}
