import type { IDataObject } from 'n8n-workflow';

import { ACCOUNT_ERROR_CODES, PARALLEL_LIMIT_CODE } from '../contract';
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
	/** CometAPI's gateway answers some errors as {error: {message, type, param, code}} instead. */
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

export function parseEnvelope(body: unknown): ApiEnvelope | undefined {
	let value = body;
	if (Buffer.isBuffer(value)) value = value.toString('utf8');
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

/** The error fields of either envelope, CometAPI's `{error: {…}}` first. */
function errorFields(envelope: ApiEnvelope): { code?: unknown; message?: string; type?: string; param?: string } {
	const inner = envelope.error;
	if (inner && typeof inner === 'object' && !Array.isArray(inner)) {
		const fields = inner as Record<string, unknown>;
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

/** Reads an answer: HTTP status and the `{code, message, data}` envelope together decide. */
export function readAnswer(response: FullResponse): Answer {
	const status = response.statusCode;
	const envelope = parseEnvelope(response.body);
	const retryAfterMs = parseRetryAfter(response.headers['retry-after']);

	if (!envelope) {
		const error = providerError(status, {}, 'unreadable answer (not JSON)');
		if (status === 429) return { type: 'rateLimited', retryAfterMs, error };
		return { type: 'error', transient: status < 400 || status >= 500, error };
	}
	const accepted = status < 400 && envelope.error === undefined && (envelope.code === 0 || envelope.code === '0');
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
	if ((status === 429 || Number(error.code) === 429) && !error.account) {
		return { type: 'rateLimited', retryAfterMs, error };
	}
	return { type: 'error', transient: status >= 500, retryAfterMs, error };
}
