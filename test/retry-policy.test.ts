/** The retry policy itself: backoff with jitter, Retry-After, when retrying stops (attempts and time budget), and the budget one request spends. */
import {
	backoffDelay,
	DEFAULT_RETRY_POLICY as RETRY,
	parseRetryAfter,
	RetryBudget,
	retryDelay,
	type RetryPolicy,
} from '../nodes/shared/request/retry';

describe('retry policy constants', () => {
	it('backs off exponentially with jitter, capped, within a bounded number of attempts and time', () => {
		for (let attempt = 1; attempt <= 8; attempt++) {
			const ceiling = Math.min(RETRY.maxDelayMs, RETRY.baseDelayMs * 2 ** (attempt - 1));
			for (let sample = 0; sample < 50; sample++) {
				const delay = backoffDelay(RETRY, attempt);
				expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
				expect(delay).toBeLessThanOrEqual(ceiling);
			}
		}
		expect(RETRY.maxAttempts).toBe(5);
		expect(RETRY.maxRetryTimeMs).toBe(120_000);
		// Worst case of all backoff waits together stays inside the time budget.
		let worst = 0;
		for (let attempt = 1; attempt < RETRY.maxAttempts; attempt++) {
			worst += Math.min(RETRY.maxDelayMs, RETRY.baseDelayMs * 2 ** (attempt - 1));
		}
		expect(worst).toBeLessThan(RETRY.maxRetryTimeMs);
	});

	it('reads Retry-After as seconds or an HTTP date, and ignores anything else', () => {
		expect(parseRetryAfter('0')).toBe(0);
		expect(parseRetryAfter('3')).toBe(3000);
		expect(parseRetryAfter(2)).toBe(2000);
		const inFiveSeconds = new Date(Date.now() + 5000).toUTCString();
		expect(parseRetryAfter(inFiveSeconds)).toBeGreaterThan(3000);
		expect(parseRetryAfter(inFiveSeconds)).toBeLessThanOrEqual(5000);
		expect(parseRetryAfter('soon')).toBeUndefined();
		expect(parseRetryAfter(undefined)).toBeUndefined();
	});

	it('stops retrying after the last attempt, or when a wait would outlast the time budget', () => {
		const now = Date.now();
		expect(retryDelay(RETRY, 1, now, 0)).toBe(0);
		expect(retryDelay(RETRY, RETRY.maxAttempts - 1, now, 0)).toBe(0);
		expect(retryDelay(RETRY, RETRY.maxAttempts, now, 0)).toBeUndefined();
		expect(retryDelay(RETRY, 1, now, 3_600_000)).toBeUndefined();
		expect(retryDelay(RETRY, 1, now - RETRY.maxRetryTimeMs - 1, 0)).toBeUndefined();
	});
});

describe('retry budget', () => {
	const policy: RetryPolicy = { maxAttempts: 3, maxRetryTimeMs: 10_000, baseDelayMs: 100, maxDelayMs: 1_000 };

	it('grants maxAttempts − 1 retries, honouring Retry-After, then none', () => {
		const budget = new RetryBudget(policy);
		expect(budget.next(0)).toBe(0);
		const second = budget.next() as number;
		expect(second).toBeGreaterThanOrEqual(100);
		expect(second).toBeLessThanOrEqual(200);
		expect(budget.next(0)).toBeUndefined();
	});

	it('refuses a Retry-After longer than the time budget', () => {
		expect(new RetryBudget(policy).next(60_000)).toBeUndefined();
	});
});
