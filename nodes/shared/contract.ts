/**
 * Facts of CometAPI's Kling Omni Image API (see the contract): where it is, what a create body may
 * hold. The node's form and its validation are both built from these, so they cannot disagree.
 */

export const CREDENTIAL_TYPE = 'cometApiKlingApi';
export const DEFAULT_BASE_URL = 'https://api.cometapi.com';
export const OMNI_IMAGE_PATH = '/kling/v1/images/omni-image';

/** Kling's codes for a key it does not accept (missing, invalid or expired), first to last. */
export const AUTH_ERROR_CODES = { first: 1000, last: 1004 };

export function isAuthErrorCode(code: unknown): boolean {
	const number = Number(code);
	return number >= AUTH_ERROR_CODES.first && number <= AUTH_ERROR_CODES.last;
}

/** Kling's codes for an account that cannot pay: retrying does not help. */
export const ACCOUNT_EXCEPTION_CODE = '1100';
export const ACCOUNT_ARREARS_CODE = '1101';
/** The resource pack is used up or expired. */
export const PACK_EXHAUSTED_CODE = '1102';
export const ACCOUNT_ERROR_CODES = [ACCOUNT_EXCEPTION_CODE, ACCOUNT_ARREARS_CODE, PACK_EXHAUSTED_CODE];

/** Kling's code for "parallel task over resource pack limit": nothing was created, a slot frees later. */
export const PARALLEL_LIMIT_CODE = 1303;

/** A rate limit, when the API says it in the answer's code rather than (or as well as) its HTTP status. */
export const RATE_LIMIT_CODE = 429;

/** The word an unknown, expired or other account's task id is answered with, in the code or the message. */
export const TASK_NOT_FOUND_CODE = 'task_not_exist';

export const LIMITS = {
	promptMaxChars: 2500,
	referencesMax: 10,
	imageMaxBytes: 10 * 1024 * 1024,
	imageMinSide: 300,
	imageMaxAspect: 2.5,
};

/**
 * How many images a task makes, per result type: the form's field, the body's field, the range
 * and the default. A task also holds that many of the account's parallel-task slots.
 */
export const IMAGE_COUNTS = {
	single: { parameter: 'n', field: 'n', label: 'Number of Images', min: 1, max: 9, default: 1 },
	series: { parameter: 'seriesAmount', field: 'series_amount', label: 'Series Amount', min: 2, max: 9, default: 4 },
} as const;

export type ResultType = keyof typeof IMAGE_COUNTS;

/** The account's parallel-task slots a create body takes: one per image it makes. */
export function taskSlots(body: { result_type?: unknown; n?: unknown; series_amount?: unknown }): number {
	const count = IMAGE_COUNTS[body.result_type === 'series' ? 'series' : 'single'];
	const slots = Number(body[count.field]);
	return Number.isInteger(slots) && slots > 0 ? slots : count.default;
}

/** An allowed value with the name the form shows; the first of each list is the API's default. */
export interface Choice {
	name: string;
	value: string;
	description?: string;
}

export const MODELS: Choice[] = [
	{ name: 'Kling Image O1', value: 'kling-image-o1' },
	{ name: 'Kling 3.0 Omni', value: 'kling-v3-omni' },
];

export const RESOLUTIONS: Choice[] = [
	{ name: '1K', value: '1k' },
	{ name: '2K', value: '2k' },
	{ name: '4K', value: '4k' },
];

export const RESULT_TYPES: Choice[] = [
	{ name: 'Single', value: 'single', description: 'Independent images from the same prompt' },
	{ name: 'Series', value: 'series', description: 'A set of related images that belong together' },
];

export const ASPECT_RATIOS: Choice[] = [
	{ name: 'Auto', value: 'auto', description: 'Let the model choose from the prompt and references' },
	...['1:1', '16:9', '9:16', '4:3', '3:4', '3:2', '2:3', '21:9'].map((ratio) => ({ name: ratio, value: ratio })),
];

export function valuesOf(choices: Choice[]): string[] {
	return choices.map((choice) => choice.value);
}

export function defaultOf(choices: Choice[]): string {
	return choices[0].value;
}

/**
 * What is cut off the end of a Base URL: trailing slashes, and a final `/v1` with them. CometAPI
 * documents `https://api.cometapi.com/v1` as the base URL of its OpenAI-compatible API and users
 * paste it, but the Kling paths live at the host's root. The credential's test builds its URL with
 * this same pattern (see CometApiKlingApi.credentials.ts), so both reach the same address.
 */
export const BASE_URL_END = /(?:\/v1)?\/*$/;

/** The Base URL the Kling paths are appended to. */
export function normalizeBaseUrl(baseUrl: unknown): string {
	const text = typeof baseUrl === 'string' && baseUrl.trim() ? baseUrl.trim() : DEFAULT_BASE_URL;
	return text.replace(BASE_URL_END, '');
}

/**
 * A Base URL as texts may show it: scheme, host, port and path only. User info (`user:password@`),
 * a query string or a fragment may carry secrets, so they are never shown.
 */
export function displayBaseUrl(baseUrl: string): string {
	try {
		const url = new URL(baseUrl);
		const path = url.pathname === '/' ? '' : url.pathname;
		return `${url.protocol}//${url.host}${path}`;
	} catch {
		return 'the Base URL (not a valid URL)';
	}
}

/** Whether a Base URL is an http(s) address with a host: anything else cannot reach an API. */
export function isWebAddress(baseUrl: string): boolean {
	try {
		const url = new URL(baseUrl);
		return (url.protocol === 'https:' || url.protocol === 'http:') && url.host !== '';
	} catch {
		return false;
	}
}

/** The host (and port) of a Base URL, without anything else a text could leak. */
export function baseUrlHost(baseUrl: string): string {
	try {
		return new URL(baseUrl).host || 'the Base URL\'s host';
	} catch {
		return 'the Base URL\'s host';
	}
}
