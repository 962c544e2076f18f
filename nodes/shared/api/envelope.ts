import type { IDataObject } from 'n8n-workflow';

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
}

/** What an answer means for the caller: data, a rate limit to wait out, or an error. */
export type Answer =
	| { type: 'ok'; data: IDataObject }
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
	if (status === 402 || ['1100', '1101', '1102'].includes(String(envelope.code))) return true;
	const text = `${String(envelope.code ?? '')} ${typeof envelope.message === 'string' ? envelope.message : ''}`;
	return /balance|arrear|insufficient[_ ](user[_ ])?quota|quota is not enough|payment required/i.test(text);
}

export function providerError(status: number, envelope: ApiEnvelope, fallback?: string): ProviderError {
	const message =
		typeof envelope.message === 'string' && envelope.message
			? envelope.message
			: (fallback ?? `HTTP ${status}`);
	const requestId = typeof envelope.request_id === 'string' ? envelope.request_id : undefined;
	const parts = [`HTTP ${status}`];
	if (envelope.code !== undefined && envelope.code !== null) parts.push(`code ${String(envelope.code)}`);
	if (requestId) parts.push(`request ID ${requestId}`);
	return {
		httpStatus: status,
		account: isAccountError(status, envelope),
		code: envelope.code,
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
	const accepted = status < 400 && (envelope.code === 0 || envelope.code === '0');
	if (accepted) {
		const data = envelope.data;
		if (data && typeof data === 'object' && !Array.isArray(data)) {
			return { type: 'ok', data: data as IDataObject };
		}
		const error = providerError(status, envelope, 'the answer has no data');
		return { type: 'error', transient: true, error };
	}
	const error = providerError(status, envelope);
	if ((status === 429 || Number(envelope.code) === 429) && !error.account) {
		return { type: 'rateLimited', retryAfterMs, error };
	}
	return { type: 'error', transient: status >= 500, retryAfterMs, error };
}
