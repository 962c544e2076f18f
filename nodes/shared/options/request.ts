import type { INodeProperties } from 'n8n-workflow';

/**
 * Seconds that end up in a timer: Node fires a timer past about 24.8 days at once, which would
 * make every request time out before it is sent, or polling run without pause.
 */
export const MAX_TIMER_SECONDS = 3600;

/** The per-request timeout, for every node that sends requests or downloads images. */
export const REQUEST_TIMEOUT_OPTION: INodeProperties = {
	displayName: 'Request Timeout (Seconds)',
	name: 'requestTimeout',
	type: 'number',
	typeOptions: { minValue: 1, maxValue: MAX_TIMER_SECONDS },
	default: 60,
	description: `How long one request or image download may take, from sending it to the last byte of the answer (at most ${MAX_TIMER_SECONDS}). A create request that times out is not sent again.`,
};

/** A number option of at least `min`, its default when left empty; `fail` makes the node's own error. */
export function readNumberOption(
	value: unknown,
	label: string,
	fallback: number,
	fail: (message: string) => Error,
	min = 1,
): number {
	if (value === undefined || value === null || value === '') return fallback;
	const number = Number(value);
	if (!Number.isFinite(number) || number < min) {
		throw fail(`Option "${label}" must be a number of at least ${min}, got "${String(value)}"`);
	}
	return number;
}

/** Seconds for a timer: at least 1, at most MAX_TIMER_SECONDS. */
export function readTimerSeconds(value: unknown, label: string, fallback: number, fail: (message: string) => Error): number {
	const number = readNumberOption(value, label, fallback, fail);
	if (number > MAX_TIMER_SECONDS) {
		throw fail(`Option "${label}" must be at most ${MAX_TIMER_SECONDS} seconds, got "${String(value)}"`);
	}
	return number;
}

export function readRequestTimeoutMs(value: unknown, fail: (message: string) => Error): number {
	return readTimerSeconds(value, 'Request Timeout', REQUEST_TIMEOUT_OPTION.default as number, fail) * 1000;
}
