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

/** The error and the errors it wraps: n8n and the binary data store wrap the HTTP client's error. */
export function causeChain(error: unknown): object[] {
	const chain: object[] = [];
	let current: unknown = error;
	for (let depth = 0; depth < 6 && current && typeof current === 'object'; depth++) {
		chain.push(current);
		current = (current as { cause?: unknown }).cause;
	}
	return chain;
}

/** Error codes along the error's cause chain. */
function errorCodes(error: unknown): string[] {
	const codes: string[] = [];
	for (const link of causeChain(error)) {
		const { code, name } = link as { code?: unknown; name?: unknown };
		if (typeof code === 'string') codes.push(code);
		if (name === 'AbortError' || name === 'CanceledError') codes.push('ERR_CANCELED');
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
