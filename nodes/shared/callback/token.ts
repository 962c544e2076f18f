import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Callback tokens tie a callback to the task it was created for. Create Omni Image adds one to the
 * Callback URL of each task; the trigger accepts a callback only when the token matches the task
 * the API reports (its external task ID) and the trigger's own URL.
 *
 * The signing key is derived from the API key, which both nodes hold and the provider and any other
 * caller do not: a token proves the task was created by this account's node for this callback URL,
 * and cannot be made for another task or another trigger. The API key itself never leaves the
 * request's Authorization header; an HMAC reveals nothing of it.
 */

/** The query parameter that carries the token on the callback URL. */
export const TOKEN_PARAMETER = 'kling_token';

const SIGNING_PURPOSE = 'n8n-nodes-cometapi-kling: callback signature v1';
/** 192 bits of the HMAC, base64url: long enough that guessing is hopeless, short enough for a URL. */
const SIGNATURE_CHARS = 32;
/** The trailing path segments that name a trigger: `/webhook/<webhook id>/kling`. */
const BINDING_SEGMENTS = 3;

export type TokenKey = Buffer;

export function tokenKey(apiKey: unknown): TokenKey {
	return createHmac('sha256', String(apiKey ?? '')).update(SIGNING_PURPOSE).digest();
}

/**
 * The part of a callback URL that names one trigger. Only the last path segments count, so that a
 * reverse proxy's prefix in front of n8n does not matter; test and production URLs differ.
 */
export function urlBinding(url: string): string {
	let pathname: string;
	try {
		pathname = new URL(url).pathname;
	} catch {
		pathname = url.split(/[?#]/)[0];
	}
	const segments = pathname.split('/').filter(Boolean).map(safeDecode);
	return segments.slice(-BINDING_SEGMENTS).join('/');
}

function safeDecode(segment: string): string {
	try {
		return decodeURIComponent(segment);
	} catch {
		return segment;
	}
}

function signature(key: TokenKey, binding: string, externalTaskId: string, issuedAt: number): string {
	return createHmac('sha256', key)
		.update(`${binding}\n${externalTaskId}\n${issuedAt}`)
		.digest('base64url')
		.slice(0, SIGNATURE_CHARS);
}

/** `<issued at, base 36>.<signature>` */
function makeToken(key: TokenKey, binding: string, externalTaskId: string, issuedAt: number): string {
	return `${issuedAt.toString(36)}.${signature(key, binding, externalTaskId, issuedAt)}`;
}

/** The callback URL a task is created with: the user's URL with this task's token added. */
export function signCallbackUrl(key: TokenKey, callbackUrl: string, externalTaskId: string, issuedAt: number): string {
	const url = new URL(callbackUrl);
	url.searchParams.set(TOKEN_PARAMETER, makeToken(key, urlBinding(callbackUrl), externalTaskId, issuedAt));
	return url.toString();
}

export interface ParsedToken {
	issuedAt: number;
	signature: string;
}

export function parseToken(value: unknown): ParsedToken | undefined {
	const text = Array.isArray(value) ? value[0] : value;
	if (typeof text !== 'string') return undefined;
	const match = /^([0-9a-z]{1,12})\.([A-Za-z0-9_-]{32})$/.exec(text);
	if (!match) return undefined;
	const issuedAt = parseInt(match[1], 36);
	return Number.isSafeInteger(issuedAt) ? { issuedAt, signature: match[2] } : undefined;
}

/** Whether the token was made for this task (by its external task ID) and this trigger's URL. */
export function tokenMatches(key: TokenKey, token: ParsedToken, binding: string, externalTaskId: string): boolean {
	const expected = Buffer.from(signature(key, binding, externalTaskId, token.issuedAt));
	const given = Buffer.from(token.signature);
	return expected.length === given.length && timingSafeEqual(expected, given);
}
