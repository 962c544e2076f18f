/**
 * What a thrown request error means for a retry decision:
 * - `notSent`: no connection was made, so the API cannot have received anything;
 * - `noAnswer`: the request may have reached the API (timeout, connection cut mid-request);
 * - `cancelled`: the workflow was stopped.
 */
export interface TransportFailure {
	kind: 'notSent' | 'noAnswer' | 'cancelled';
	code?: string;
	timedOut: boolean;
}

const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ECONNABORTED', 'ESOCKETTIMEDOUT']);
const CANCEL_CODES = new Set(['ERR_CANCELED', 'ABORT_ERR']);

/** Error codes along the error's cause chain (n8n wraps the HTTP client's error). */
function errorCodes(error: unknown): string[] {
	const codes: string[] = [];
	let current: unknown = error;
	for (let depth = 0; depth < 6 && current && typeof current === 'object'; depth++) {
		const { code, name } = current as { code?: unknown; name?: unknown };
		if (typeof code === 'string') codes.push(code);
		if (name === 'AbortError' || name === 'CanceledError') codes.push('ERR_CANCELED');
		current = (current as { cause?: unknown }).cause;
	}
	return codes;
}

export function transportFailureOf(error: unknown, signal?: AbortSignal): TransportFailure {
	const codes = errorCodes(error);
	const code = codes.find((c) => c.startsWith('E')) ?? codes[0];
	const timedOut = codes.some((c) => TIMEOUT_CODES.has(c));
	if (signal?.aborted || codes.some((c) => CANCEL_CODES.has(c))) {
		return { kind: 'cancelled', code, timedOut };
	}
	if (codes.some((c) => NOT_SENT_CODES.has(c))) return { kind: 'notSent', code, timedOut };
	return { kind: 'noAnswer', code, timedOut };
}

export function describeTransportFailure(failure: TransportFailure): string {
	if (failure.timedOut) return 'no answer before the request timeout';
	if (failure.kind === 'notSent') return `connection failed (${failure.code ?? 'network error'})`;
	return `connection lost (${failure.code ?? 'network error'})`;
}
