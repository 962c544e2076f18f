import type {
	IDataObject,
	IExecuteFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	INode,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

import type { Limiter } from '../helpers/limiter';
import { pause } from '../helpers/sleep';
import { BackoffGate, parseRetryAfter, retryDelay } from './backoff';
import { describeTransportFailure, transportFailureOf, type TransportFailure } from './network';

export const CREDENTIAL_TYPE = 'cometApiKlingApi';
export const OMNI_IMAGE_PATH = '/kling/v1/images/omni-image';
export const DEFAULT_BASE_URL = 'https://api.cometapi.com';

/** Everything the requests of one execution share: limits, the 429 gate, timeouts and the stop signal. */
export interface RequestSession {
	baseUrl: string;
	timeoutMs: number;
	maxDownloadBytes: number;
	signal?: AbortSignal;
	gate: BackoffGate;
	apiLimit: Limiter;
	downloadLimit: Limiter;
}

/**
 * `query` is idempotent and retried on any transient failure. `create` costs money: it is retried
 * only when the API certainly created nothing (connection refused, 429), never after a timeout or
 * a connection cut mid-request.
 */
export type ApiCallKind = 'create' | 'query';

export interface ApiCall {
	kind: ApiCallKind;
	method: IHttpRequestMethods;
	path: string;
	body?: IDataObject;
	itemIndex: number;
	/** Named in errors so a user can find a task whose create request got no answer. */
	externalTaskId?: string;
	/** The queried task, named in errors. */
	taskId?: string;
}

/**
 * An API failure as n8n shows it. `transient` marks failures that outlived their retries but may
 * still clear up (network, 429, 5xx): a poll loop keeps the task pending instead of failing it.
 */
export class CometApiError extends NodeApiError {
	transient = false;

	/** The API answered that the task does not exist (unknown, expired, or not yet visible). */
	taskNotFound = false;

	constructor(
		node: INode,
		response: JsonObject,
		options: { message: string; description?: string; httpCode?: string; itemIndex: number },
		transient = false,
	) {
		super(node, response, options);
		// NodeApiError swaps a message that mentions ECONNRESET, ETIMEDOUT, ... for a generic text,
		// which would drop what matters here: that a task may exist, which URL, which item.
		this.message = options.message;
		this.transient = transient;
	}
}

interface FullResponse {
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

/**
 * The session's stop signal, wrapped per request: the HTTP client adds an abort listener to the
 * signal it gets, and with many requests in flight on one signal Node warns about a listener leak.
 */
export function requestSignal(session: RequestSession): AbortSignal | undefined {
	return session.signal && AbortSignal.any([session.signal]);
}

export function normalizeBaseUrl(baseUrl: unknown): string {
	const text = typeof baseUrl === 'string' && baseUrl.trim() ? baseUrl.trim() : DEFAULT_BASE_URL;
	return text.replace(/\/+$/, '');
}

/** Sends one API call with the retry policy of its kind and returns the envelope's `data`. */
export async function apiRequest(
	this: IExecuteFunctions,
	session: RequestSession,
	call: ApiCall,
): Promise<IDataObject> {
	const startedAt = Date.now();
	const wait = async (ms: number) => {
		try {
			await pause(ms, session.signal);
		} catch {
			throw cancelledError(this, call);
		}
	};
	for (let attempt = 1; ; attempt++) {
		const outcome = await sendOnce.call(this, session, call, (retryAfterMs) =>
			retryDelay(attempt, startedAt, retryAfterMs),
		);

		if (outcome.type === 'ok') return outcome.data;
		if (outcome.type === 'rateLimited') {
			// Nothing was created: always safe to retry. sendOnce already paused every request.
			if (outcome.retryDelayMs === undefined) throw apiError(this, call, outcome.error, true);
			continue;
		}
		if (outcome.type === 'transport') {
			if (outcome.failure.kind === 'cancelled') {
				// A create stopped in flight may still have reached the API.
				if (call.kind === 'create' && outcome.sent) {
					throw createMayExistError(this, call, 'the execution was stopped');
				}
				throw cancelledError(this, call);
			}
			const safeToRetry = call.kind === 'query' || outcome.failure.kind === 'notSent';
			if (!safeToRetry) throw createMayExistError(this, call, describeTransportFailure(outcome.failure));
			const delay = retryDelay(attempt, startedAt);
			if (delay === undefined) throw unreachableError(this, session, call, outcome.failure);
			await wait(delay);
			continue;
		}
		// An answer came back but it is an error.
		const delay =
			outcome.transient && call.kind === 'query'
				? retryDelay(attempt, startedAt, outcome.retryAfterMs)
				: undefined;
		if (delay !== undefined) {
			await wait(delay);
			continue;
		}
		if (outcome.transient && call.kind === 'create') {
			// A 5xx or an unreadable answer does not prove the task was not created.
			throw createMayExistError(this, call, outcome.error.summary);
		}
		throw apiError(this, call, outcome.error, outcome.transient);
	}
}

interface ProviderError {
	httpStatus: number;
	/** Out of balance or quota: not worth retrying, and not a key problem. */
	account: boolean;
	code?: unknown;
	message: string;
	requestId?: string;
	summary: string;
}

type SendOutcome =
	| { type: 'ok'; data: IDataObject }
	| { type: 'rateLimited'; retryAfterMs?: number; retryDelayMs?: number; error: ProviderError }
	| { type: 'transport'; failure: TransportFailure; sent: boolean }
	| { type: 'error'; transient: boolean; retryAfterMs?: number; error: ProviderError };

/** Sends one attempt. `retryIn` says how long to wait after a 429, or undefined to give up. */
async function sendOnce(
	this: IExecuteFunctions,
	session: RequestSession,
	call: ApiCall,
	retryIn: (retryAfterMs?: number) => number | undefined,
): Promise<SendOutcome> {
	const options: IHttpRequestOptions = {
		method: call.method,
		url: `${session.baseUrl}${call.path}`,
		headers: { Accept: 'application/json' },
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
		timeout: session.timeoutMs,
		abortSignal: requestSignal(session),
	};
	if (call.body) {
		options.body = call.body;
		options.json = true;
	}

	let sent = false;
	try {
		return await session.apiLimit(async () => {
			// Checked once a slot is free, so a 429 also holds back the requests already queued for one.
			await session.gate.whenOpen(session.signal);
			// n8n replaces the request's abort signal with the execution's own, so a run that stopped
			// itself (first failure without "Continue On Fail") must not send what is still queued.
			if (session.signal?.aborted) throw Object.assign(new Error('stopped'), { code: 'ERR_CANCELED' });
			sent = true;
			const response = (await this.helpers.httpRequestWithAuthentication.call(
				this,
				CREDENTIAL_TYPE,
				options,
			)) as FullResponse;
			const outcome = interpretResponse(response);
			if (outcome.type === 'rateLimited') {
				// Close the gate before this slot frees, or the request queued next would go out at once.
				outcome.retryDelayMs = retryIn(outcome.retryAfterMs);
				if (outcome.retryDelayMs !== undefined) session.gate.pauseFor(outcome.retryDelayMs);
			}
			return outcome;
		});
	} catch (error) {
		return { type: 'transport', failure: transportFailureOf(error, session.signal), sent };
	}
}

function interpretResponse(response: FullResponse): SendOutcome {
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

/**
 * No balance, quota or an account in arrears: retrying cannot help. Kling sends these as HTTP 429
 * with codes 1100–1102; CometAPI as `insufficient_user_quota` or a message about the balance.
 */
function isAccountError(status: number, envelope: ApiEnvelope): boolean {
	if (status === 402 || ['1100', '1101', '1102'].includes(String(envelope.code))) return true;
	const text = `${String(envelope.code ?? '')} ${typeof envelope.message === 'string' ? envelope.message : ''}`;
	return /balance|arrear|insufficient[_ ](user[_ ])?quota|quota is not enough|payment required/i.test(text);
}

function parseEnvelope(body: unknown): ApiEnvelope | undefined {
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

function providerError(status: number, envelope: ApiEnvelope, fallback?: string): ProviderError {
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

function callLabel(call: ApiCall): string {
	return call.kind === 'create' ? 'create the image task' : `query task ${call.taskId ?? ''}`.trim();
}

function apiError(
	ctx: IExecuteFunctions,
	call: ApiCall,
	error: ProviderError,
	transient: boolean,
): CometApiError {
	const response: JsonObject = {
		message: error.message,
		http_status: error.httpStatus,
		code: (error.code ?? null) as JsonObject[string],
		request_id: error.requestId ?? null,
	};
	const apiFailure = new CometApiError(
		ctx.getNode(),
		response,
		{
			message: `CometAPI could not ${callLabel(call)}: ${error.summary} [item ${call.itemIndex}]`,
			description: hintFor(error),
			httpCode: String(error.httpStatus),
			itemIndex: call.itemIndex,
		},
		transient,
	);
	apiFailure.taskNotFound = call.kind === 'query' && isTaskNotFound(error);
	return apiFailure;
}

function isTaskNotFound(error: ProviderError): boolean {
	return /task_not_exist/i.test(`${String(error.code)} ${error.message}`);
}

function hintFor(error: ProviderError): string | undefined {
	if (error.account) {
		return 'Your CometAPI balance or quota does not cover this request. Top it up, then run the item again.';
	}
	if (error.httpStatus === 401 || error.httpStatus === 403) {
		return 'Check the API key in the CometAPI credential.';
	}
	if (isTaskNotFound(error)) {
		return 'The task ID is unknown, expired or belongs to another account.';
	}
	if (error.httpStatus === 429 || Number(error.code) === 429) {
		return 'CometAPI kept rate-limiting after several retries. Lower "Max Concurrent Requests" or try again later.';
	}
	return undefined;
}

function createMayExistError(ctx: IExecuteFunctions, call: ApiCall, what: string): CometApiError {
	const lookup = call.externalTaskId
		? `Look for external task ID "${call.externalTaskId}" in your CometAPI task log before running this item again.`
		: 'Check your CometAPI task log before running this item again; turn on "Generate External Task ID" to make such tasks easy to find.';
	return new CometApiError(
		ctx.getNode(),
		{ message: what },
		{
			message: `The create request got no usable answer (${what}): the task may have been created and charged [item ${call.itemIndex}]`,
			description: `It was not sent again, so that nothing is paid for twice. ${lookup}`,
			itemIndex: call.itemIndex,
		},
	);
}

function unreachableError(
	ctx: IExecuteFunctions,
	session: RequestSession,
	call: ApiCall,
	failure: TransportFailure,
): CometApiError {
	return new CometApiError(
		ctx.getNode(),
		{ message: describeTransportFailure(failure) },
		{
			message: `Could not reach CometAPI at ${session.baseUrl} to ${callLabel(call)}: ${describeTransportFailure(failure)} [item ${call.itemIndex}]`,
			description: 'Check the Base URL in the CometAPI credential and the network.',
			itemIndex: call.itemIndex,
		},
		true,
	);
}

function cancelledError(ctx: IExecuteFunctions, call: ApiCall): CometApiError {
	return new CometApiError(
		ctx.getNode(),
		{ message: 'cancelled' },
		{
			message: `The execution was stopped before CometAPI could ${callLabel(call)} [item ${call.itemIndex}]`,
			itemIndex: call.itemIndex,
		},
	);
}

/** POST the create call; answers the created task (status `submitted`). */
export async function createTask(
	this: IExecuteFunctions,
	session: RequestSession,
	itemIndex: number,
	body: IDataObject,
	externalTaskId?: string,
): Promise<IDataObject> {
	return await apiRequest.call(this, session, {
		kind: 'create',
		method: 'POST',
		path: OMNI_IMAGE_PATH,
		body,
		itemIndex,
		externalTaskId,
	});
}

/** GET one task's current state. */
export async function queryTask(
	this: IExecuteFunctions,
	session: RequestSession,
	itemIndex: number,
	taskId: string,
): Promise<IDataObject> {
	return await apiRequest.call(this, session, {
		kind: 'query',
		method: 'GET',
		path: `${OMNI_IMAGE_PATH}/${encodeURIComponent(taskId)}`,
		itemIndex,
		taskId,
	});
}
