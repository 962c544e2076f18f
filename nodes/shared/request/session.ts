import { BackoffGate } from './gate';
import { createLimiter, type Limiter } from './limiter';
import type { RetryPolicy } from './retry';

/** Everything the requests of one execution share: limits, the 429 gate, retries, timeouts, the stop signal. */
export interface RequestSession {
	baseUrl: string;
	timeoutMs: number;
	signal?: AbortSignal;
	retry: RetryPolicy;
	gate: BackoffGate;
	apiLimit: Limiter;
	downloadLimit: Limiter;
}

export function createRequestSession(settings: {
	baseUrl: string;
	timeoutMs: number;
	maxConcurrentRequests: number;
	retry: RetryPolicy;
	signal?: AbortSignal;
}): RequestSession {
	return {
		baseUrl: settings.baseUrl,
		timeoutMs: settings.timeoutMs,
		signal: settings.signal,
		retry: settings.retry,
		gate: new BackoffGate(settings.retry.maxRetryTimeMs),
		apiLimit: createLimiter(settings.maxConcurrentRequests),
		downloadLimit: createLimiter(settings.maxConcurrentRequests),
	};
}

/** The same session, also stopped by `signal` (e.g. a run that stops itself at its first failure). */
export function withStopSignal(session: RequestSession, signal: AbortSignal): RequestSession {
	const signals = session.signal ? [signal, session.signal] : [signal];
	return { ...session, signal: AbortSignal.any(signals) };
}

/**
 * The session's stop signal, wrapped per request: the HTTP client adds an abort listener to the
 * signal it gets, and with many requests in flight on one signal Node warns about a listener leak.
 */
export function requestSignal(session: RequestSession): AbortSignal | undefined {
	return session.signal && AbortSignal.any([session.signal]);
}
