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

/** API requests (and, apart, image downloads) in flight at once: the action node's option, and the trigger's fixed limit. */
export const MAX_CONCURRENT_REQUESTS_OPTION: INodeProperties = {
	displayName: 'Max Concurrent Requests',
	name: 'maxConcurrentRequests',
	type: 'number',
	typeOptions: { minValue: 1, maxValue: 100 },
	default: 10,
	description:
		'How many API requests (and, separately, image downloads) may be in flight at once when many items run together',
};

/** Turns a wrong option value into the node's own error. */
export type OptionFailure = (message: string) => Error;

/** How errors name an option: its display name without the unit, e.g. "Poll Interval". */
export function optionLabel(option: INodeProperties): string {
	return option.displayName.replace(/ \([^)]*\)$/, '');
}

/** A number option's default, as its definition gives it: the one place the number is written. */
export function defaultNumber(option: INodeProperties): number {
	return option.default as number;
}

/** A number option of at least its minimum (1 unless it says otherwise), its default when left empty. */
export function readNumberOption(value: unknown, option: INodeProperties, fail: OptionFailure): number {
	if (value === undefined || value === null || value === '') return defaultNumber(option);
	const min = option.typeOptions?.minValue ?? 1;
	const number = Number(value);
	if (!Number.isFinite(number) || number < min) {
		throw fail(`Option "${optionLabel(option)}" must be a number of at least ${min}, got "${String(value)}"`);
	}
	return number;
}

/** Seconds for a timer: at least 1, at most MAX_TIMER_SECONDS. */
export function readTimerSeconds(value: unknown, option: INodeProperties, fail: OptionFailure): number {
	const number = readNumberOption(value, option, fail);
	if (number > MAX_TIMER_SECONDS) {
		throw fail(`Option "${optionLabel(option)}" must be at most ${MAX_TIMER_SECONDS} seconds, got "${String(value)}"`);
	}
	return number;
}

export function readRequestTimeoutMs(value: unknown, fail: OptionFailure): number {
	return readTimerSeconds(value, REQUEST_TIMEOUT_OPTION, fail) * 1000;
}

export function readMaxConcurrentRequests(value: unknown, fail: OptionFailure): number {
	return Math.floor(readNumberOption(value, MAX_CONCURRENT_REQUESTS_OPTION, fail));
}
