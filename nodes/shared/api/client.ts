import type { IDataObject, IHttpRequestMethods, IHttpRequestOptions } from 'n8n-workflow';

import type { NodeContext } from '../nodeContext';
import { baseUrlHost, CREDENTIAL_TYPE, isWebAddress, OMNI_IMAGE_PATH } from '../contract';
import {
	apiError,
	cancelledError,
	parallelLimitError,
	createMayExistError,
	invalidBaseUrlError,
	unreachableError,
	type CallInfo,
} from '../errors/api';
import { redactStrings, redirectRefusedError, type Redactor } from '../errors';
import { otherTaskAnswerError } from '../errors/task';
import type { ProviderError } from '../errors/api';
import { readBody, withinTimeout } from '../request/requestTimeout';
import { describeTransportFailure, transportFailureOf, type TransportFailure } from '../request/network';
import { withRetries, type Attempt, type RetryBudget } from '../request/retry';
import { requestSignal, type RequestSession } from '../request/session';
import { readAnswer, type Answer, type FullResponse } from './envelope';

/**
 * `query` is idempotent and retried on any transient failure. `create` costs money: it is retried
 * only when the API certainly created nothing (connection refused, 429), never after a timeout or
 * a connection cut mid-request.
 */
interface ApiCall extends CallInfo {
	method: IHttpRequestMethods;
	path: string;
	body?: IDataObject;
}

/** A 429 with the wait the budget granted for it (undefined: the retries are used up). */
type RateLimited = Extract<Answer, { type: 'rateLimited' }> & { retryDelayMs?: number };

type SendOutcome =
	| Exclude<Answer, { type: 'rateLimited' }>
	| RateLimited
	| { type: 'redirect'; status: number; location: unknown; requestUrl: string }
	| { type: 'transport'; failure: TransportFailure; sent: boolean };

/** An API answer is small JSON; reading stops here, so an endless body cannot fill the memory. */
const MAX_ANSWER_BYTES = 5 * 1024 * 1024;

/** Sends one API call with the retry policy of its kind and returns the envelope's `data`. */
async function apiRequest(ctx: NodeContext, session: RequestSession, call: ApiCall): Promise<IDataObject> {
	const node = ctx.getNode();
	if (!isWebAddress(call.baseUrl)) throw invalidBaseUrlError(node, call);
	// Only waiting for a task is bounded by Max Wait Time; a create keeps its own retry budget.
	const limits = { ...session, deadlineAt: call.kind === 'query' ? session.deadlineAt : undefined };
	return await withRetries(limits, () => cancelledError(node, call), async (budget) => {
		const outcome = await sendOnce(ctx, session, call, budget);
		return decide(ctx, session, call, outcome, budget);
	});
}

/** Whether to return, retry (after how long) or throw, for one attempt's outcome. */
function decide(
	ctx: NodeContext,
	session: RequestSession,
	call: ApiCall,
	outcome: SendOutcome,
	budget: RetryBudget,
): Attempt<IDataObject> {
	const node = ctx.getNode();
	switch (outcome.type) {
		case 'ok':
			return { done: outcome.data };
		case 'redirect':
			throw redirectRefusedError(
				node,
				{ label: answeredCall(call), itemIndex: call.itemIndex, isCreate: call.kind === 'create', path: call.path },
				outcome,
			);
		case 'parallelLimit':
			// Nothing was created. Waiting for a slot is the run's job (it knows which tasks will end).
			throw parallelLimitError(node, call, outcome.error);
		case 'rateLimited':
			// Nothing was created, so a retry is always safe; sendOnce already closed the shared gate.
			if (outcome.retryDelayMs === undefined) throw apiError(node, call, outcome.error, true);
			return { retryInMs: 0 };
		case 'transport': {
			if (outcome.failure.kind === 'cancelled') {
				// A create stopped in flight may still have reached the API.
				if (call.kind === 'create' && outcome.sent) throw createMayExistError(node, call, 'the execution was stopped');
				throw cancelledError(node, call);
			}
			const safeToRetry = call.kind === 'query' || outcome.failure.kind === 'notSent';
			if (!safeToRetry) throw createMayExistError(node, call, describeTransportFailure(outcome.failure));
			const delay = budget.next();
			if (delay === undefined) throw unreachableError(node, call, outcome.failure);
			return { retryInMs: delay };
		}
		case 'error':
			return decideOnErrorAnswer(ctx, call, outcome, budget);
	}
}

function decideOnErrorAnswer(
	ctx: NodeContext,
	call: ApiCall,
	outcome: Extract<Answer, { type: 'error' }>,
	budget: RetryBudget,
): Attempt<IDataObject> {
	const delay = outcome.transient && call.kind === 'query' ? budget.next(outcome.retryAfterMs) : undefined;
	if (delay !== undefined) return { retryInMs: delay };
	// A 5xx or an unreadable answer does not prove the task was not created.
	if (outcome.transient && call.kind === 'create') {
		throw createMayExistError(ctx.getNode(), call, outcome.error.summary);
	}
	throw apiError(ctx.getNode(), call, outcome.error, outcome.transient);
}

function answeredCall(call: ApiCall): string {
	return call.kind === 'create' ? 'the create request' : `the query of task ${call.taskId ?? ''}`;
}

/** The answer with every provider text scrubbed of the API key, before it can reach an error or output. */
function redactAnswer(answer: Answer, redact: Redactor): Answer {
	if (answer.type === 'ok') return { ...answer, data: redactStrings(answer.data, redact) };
	const error: ProviderError = {
		...answer.error,
		code: typeof answer.error.code === 'string' ? redact(answer.error.code) : answer.error.code,
		message: redact(answer.error.message),
		summary: redact(answer.error.summary),
	};
	return { ...answer, error };
}

/** The whole exchange, body included, within the request timeout (see withinTimeout). */
async function exchange(ctx: NodeContext, session: RequestSession, options: IHttpRequestOptions): Promise<FullResponse> {
	return await withinTimeout(
		session.timeoutMs,
		async () =>
			(await ctx.helpers.httpRequestWithAuthentication.call(ctx, CREDENTIAL_TYPE, options)) as FullResponse & {
				body: AsyncIterable<unknown> & { destroy(error?: Error): unknown };
			},
		async (response) => ({ ...response, body: await readBody(response.body, MAX_ANSWER_BYTES) }),
	);
}

/** Sends one attempt within the session's limits; a 429 closes the shared gate for the budget's wait. */
async function sendOnce(
	ctx: NodeContext,
	session: RequestSession,
	call: ApiCall,
	budget: RetryBudget,
): Promise<SendOutcome> {
	const options: IHttpRequestOptions = {
		method: call.method,
		url: `${call.baseUrl}${call.path}`,
		headers: { Accept: 'application/json' },
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
		// n8n's helper would send the API key (and a create's body) on to any host a redirect names.
		disableFollowRedirect: true,
		// Streamed, so that the body is read within the request timeout too.
		encoding: 'stream',
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
			const response = await exchange(ctx, session, options);
			if (response.statusCode >= 300 && response.statusCode < 400) {
				const location = response.headers.location;
				return { type: 'redirect', status: response.statusCode, location, requestUrl: options.url };
			}
			const answer = redactAnswer(readAnswer(response, baseUrlHost(call.baseUrl)), session.redact);
			if (answer.type !== 'rateLimited') return answer;
			// Close the gate before this slot frees, or the request queued next would go out at once.
			const retryDelayMs = budget.next(answer.retryAfterMs);
			if (retryDelayMs !== undefined) session.gate.pauseFor(retryDelayMs);
			return { ...answer, retryDelayMs };
		});
	} catch (error) {
		return { type: 'transport', failure: transportFailureOf(error, session.signal), sent };
	}
}

/** POST the create call; answers the created task (status `submitted`). */
export async function createTask(
	ctx: NodeContext,
	session: RequestSession,
	itemIndex: number,
	body: IDataObject,
	externalTaskId?: string,
): Promise<IDataObject> {
	return await apiRequest(ctx, session, {
		kind: 'create',
		baseUrl: session.baseUrl,
		method: 'POST',
		path: OMNI_IMAGE_PATH,
		body,
		itemIndex,
		externalTaskId,
	});
}

/** GET one task's current state; an answer about another task is refused, never used. */
export async function queryTask(
	ctx: NodeContext,
	session: RequestSession,
	itemIndex: number,
	taskId: string,
): Promise<IDataObject> {
	const data = await apiRequest(ctx, session, {
		kind: 'query',
		baseUrl: session.baseUrl,
		method: 'GET',
		path: `${OMNI_IMAGE_PATH}/${encodeURIComponent(taskId)}`,
		itemIndex,
		taskId,
	});
	const answered = data.task_id;
	if (answered !== undefined && answered !== null && String(answered) !== taskId) {
		throw otherTaskAnswerError(ctx.getNode(), taskId, String(answered), itemIndex);
	}
	return data;
}
