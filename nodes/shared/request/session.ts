import { BackoffGate } from './gate';
import { createLimiter, type Limiter } from './limiter';
import type { RetryPolicy } from './retry';

/** Everything the requests of one execution share: limits, the 429 gate, retries, timeouts, the stop signal. */
export interface RequestSession {
	baseUrl: string;
	/** One request, from sending to the last byte of its answer. */
	timeoutMs: number;
	signal?: AbortSignal;
	retry: RetryPolicy;
	/** No task query retries past this moment (epoch ms): a long Retry-After must not outlast Max Wait Time. */
	deadlineAt?: number;
	/** Scrubs secrets out of texts that come from the API before anyone shows them. */
	redact: (text: string) => string;
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
	deadlineAt?: number;
	redact?: (text: string) => string;
}): RequestSession {
	return {
		baseUrl: settings.baseUrl,
		timeoutMs: settings.timeoutMs,
		signal: settings.signal,
		retry: settings.retry,
		deadlineAt: settings.deadlineAt,
		redact: settings.redact ?? ((text) => text),
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

/** The same session, its task queries bounded by `deadlineAt` (e.g. one task's own Max Wait Time). */
export function withDeadline(session: RequestSession, deadlineAt: number): RequestSession {
	return { ...session, deadlineAt };
}

/**
 * The session's stop signal, wrapped per request: the HTTP client adds an abort listener to the
 * signal it gets, and with many requests in flight on one signal Node warns about a listener leak.
 */
export function requestSignal(session: RequestSession): AbortSignal | undefined {
	return session.signal && AbortSignal.any([session.signal]);
}
