import type { IDataObject } from 'n8n-workflow';

import { ACCOUNT_ERROR_CODES, PARALLEL_LIMIT_CODE, RATE_LIMIT_CODE } from '../contract';
import type { ProviderError } from '../errors/api';
import { parseRetryAfter } from '../request/retry';

/** An HTTP answer as n8n's helper returns it with `returnFullResponse`. */
export interface FullResponse {
	statusCode: number;
	headers: Record<string, unknown>;
	body: unknown;
}

interface ApiEnvelope {
	code?: unknown;
	message?: unknown;
	request_id?: unknown;
	data?: unknown;
	/**
	 * CometAPI's gateway answers some errors as {error: {message, type, param, code}} instead;
	 * API proxies also send `"error": null` beside `code: 0` in a success (see gatewayError).
	 */
	error?: unknown;
}

/**
 * What an answer means for the caller: data, the account's parallel-task limit (wait for a slot),
 * a rate limit to wait out, or an error.
 */
export type Answer =
	| { type: 'ok'; data: IDataObject }
	| { type: 'parallelLimit'; error: ProviderError }
	| { type: 'rateLimited'; retryAfterMs?: number; error: ProviderError }
	| { type: 'error'; transient: boolean; retryAfterMs?: number; error: ProviderError };

function bodyText(body: unknown): string | undefined {
	if (Buffer.isBuffer(body)) return body.toString('utf8');
	return typeof body === 'string' ? body : undefined;
}

export function parseEnvelope(body: unknown): ApiEnvelope | undefined {
	let value = bodyText(body) ?? body;
	if (typeof value === 'string') {
		try {
			value = JSON.parse(value);
		} catch {
			return undefined;
		}
	}
	if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
	return value as ApiEnvelope;
}

/**
 * No balance, quota or an account in arrears: retrying cannot help. Kling sends these as HTTP 429
 * with codes 1100–1102; CometAPI as `insufficient_user_quota` or a message about the balance.
 */
function isAccountError(status: number, envelope: ApiEnvelope): boolean {
	if (status === 402 || ACCOUNT_ERROR_CODES.includes(String(envelope.code))) return true;
	const words = `${String(envelope.code ?? '')} ${typeof envelope.message === 'string' ? envelope.message : ''}`;
	return /balance|arrear|insufficient[_ ](user[_ ])?quota|quota is not enough|payment required/i.test(words);
}

function text(value: unknown): string | undefined {
	if (typeof value === 'string' && value !== '') return value;
	return typeof value === 'number' ? String(value) : undefined;
}

/**
 * CometAPI's `{error: {…}}`, when the answer carries one. Only an object with members is an error:
 * proxies send `"error": null` (or an empty object) beside `code: 0` in a success.
 */
function gatewayError(envelope: ApiEnvelope): Record<string, unknown> | undefined {
	const inner = envelope.error;
	if (!inner || typeof inner !== 'object' || Array.isArray(inner)) return undefined;
	return Object.keys(inner).length > 0 ? (inner as Record<string, unknown>) : undefined;
}

/** The error fields of either envelope, CometAPI's `{error: {…}}` first. */
function errorFields(envelope: ApiEnvelope): { code?: unknown; message?: string; type?: string; param?: string } {
	const fields = gatewayError(envelope);
	if (fields) {
		return {
			code: text(fields.code),
			message: text(fields.message),
			type: text(fields.type),
			param: text(fields.param),
		};
	}
	return { code: envelope.code ?? undefined, message: text(envelope.message) };
}

export function providerError(status: number, envelope: ApiEnvelope, fallback?: string): ProviderError {
	const fields = errorFields(envelope);
	const message = fields.message ?? fallback ?? `HTTP ${status}`;
	const requestId = typeof envelope.request_id === 'string' ? envelope.request_id : undefined;
	const parts = [`HTTP ${status}`];
	if (fields.code !== undefined && fields.code !== null) parts.push(`code ${String(fields.code)}`);
	if (fields.type) parts.push(`type ${fields.type}`);
	if (fields.param) parts.push(`param ${fields.param}`);
	if (requestId) parts.push(`request ID ${requestId}`);
	return {
		httpStatus: status,
		account: isAccountError(status, { code: fields.code, message }),
		code: fields.code,
		message,
		requestId,
		summary: `${message} (${parts.join(', ')})`,
	};
}

function contentType(response: FullResponse): string {
	const value = response.headers['content-type'];
	return (typeof value === 'string' ? value : '').split(';')[0].trim().toLowerCase();
}

/**
 * An answer that is not JSON at all came from something other than the API (a proxy's error page,
 * a web server at a wrong path): it is described by its kind, never shown, and names the host that
 * sent it. A body that says it is JSON but does not parse is the API's answer garbled.
 */
function unreadableAnswer(response: FullResponse, host: string): ProviderError {
	const status = response.statusCode;
	const type = contentType(response);
	const text = (bodyText(response.body) ?? '').trimStart();
	if (type.includes('json')) return providerError(status, {}, 'unreadable answer (not JSON)');
	let kind: string;
	if (type === 'text/html' || type === 'application/xhtml+xml' || /^<(!doctype html|html)/i.test(text)) kind = 'an HTML page';
	else if (!text) kind = 'an empty body';
	else kind = type ? `a ${type} body` : 'a body that is not JSON';
	const message = `not an API answer from ${host} (HTTP ${status}, ${kind})`;
	return { httpStatus: status, account: false, message, summary: message, notApiAnswer: true };
}

/**
 * Reads an answer: HTTP status and the `{code, message, data}` envelope together decide.
 * `host` is the Base URL's host, named when the answer did not come from the API.
 */
export function readAnswer(response: FullResponse, host = "the Base URL's host"): Answer {
	const status = response.statusCode;
	const envelope = parseEnvelope(response.body);
	const retryAfterMs = parseRetryAfter(response.headers['retry-after']);

	if (!envelope) {
		const error = unreadableAnswer(response, host);
		if (status === 429) return { type: 'rateLimited', retryAfterMs, error };
		return { type: 'error', transient: status < 400 || status >= 500, error };
	}
	const accepted =
		status < 400 && gatewayError(envelope) === undefined && (envelope.code === 0 || envelope.code === '0');
	if (accepted) {
		const data = envelope.data;
		if (data && typeof data === 'object' && !Array.isArray(data)) {
			return { type: 'ok', data: data as IDataObject };
		}
		const error = providerError(status, envelope, 'the answer has no data');
		return { type: 'error', transient: true, error };
	}
	const error = providerError(status, envelope);
	// Nothing was created; a slot frees only when one of the account's tasks ends.
	if (Number(error.code) === PARALLEL_LIMIT_CODE) return { type: 'parallelLimit', error };
	if ((status === 429 || Number(error.code) === RATE_LIMIT_CODE) && !error.account) {
		return { type: 'rateLimited', retryAfterMs, error };
	}
	return { type: 'error', transient: status >= 500, retryAfterMs, error };
}
