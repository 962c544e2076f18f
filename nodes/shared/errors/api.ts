import type { INode, JsonObject } from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

import {
	ACCOUNT_ARREARS_CODE,
	ACCOUNT_EXCEPTION_CODE,
	DEFAULT_BASE_URL,
	displayBaseUrl,
	isAuthErrorCode,
	OMNI_IMAGE_PATH,
	PACK_EXHAUSTED_CODE,
	PARALLEL_LIMIT_CODE,
	RATE_LIMIT_CODE,
	TASK_NOT_FOUND_CODE,
} from '../contract';
import { describeTransportFailure, type TransportFailure } from '../request/network';
import { keepMessage, withItem } from './index';

/** What an API call was for, as errors name it. */
export interface CallInfo {
	kind: 'create' | 'query';
	/** Where the call went; texts show it only through displayBaseUrl. */
	baseUrl: string;
	itemIndex: number;
	/** Named in errors so a user can find a task whose create request got no answer. */
	externalTaskId?: string;
	/** The queried task. */
	taskId?: string;
}

/** An error answer of the API, read from any of its envelopes. */
export interface ProviderError {
	httpStatus: number;
	/** Out of balance or quota: not worth retrying, and not a key problem. */
	account: boolean;
	code?: unknown;
	message: string;
	requestId?: string;
	summary: string;
	/** The answer was not JSON: a proxy, a gateway or a web server answered instead of the API. */
	notApiAnswer?: boolean;
}

/**
 * An API failure as n8n shows it. `transient` marks failures that outlived their retries but may
 * still clear up (network, 429, 5xx): a poll loop keeps the task pending instead of failing it.
 */
export class CometApiError extends NodeApiError {
	transient = false;

	/** The API answered that the task does not exist (unknown, expired, or not yet visible). */
	taskNotFound = false;

	/** A create refused for the account's parallel-task limit: nothing was created, try again when a slot frees. */
	parallelLimit = false;

	/** A create that may have reached the API (no usable answer): it may have created a task. */
	mayExist = false;

	constructor(
		node: INode,
		response: JsonObject,
		options: { message: string; description?: string; httpCode?: string; itemIndex: number },
		transient = false,
	) {
		super(node, response, options);
		keepMessage(this, options.message);
		this.transient = transient;
	}
}

function callLabel(call: CallInfo): string {
	return call.kind === 'create' ? 'create the image task' : `query task ${call.taskId ?? ''}`.trim();
}

const TASK_NOT_FOUND = new RegExp(TASK_NOT_FOUND_CODE, 'i');

export function isTaskNotFound(error: ProviderError): boolean {
	return TASK_NOT_FOUND.test(`${String(error.code)} ${error.message}`);
}

/** What each account state needs; the common first words let users (and tests) recognise the family. */
const ACCOUNT_HINTS: Record<string, string> = {
	[ACCOUNT_EXCEPTION_CODE]: 'Your Kling account has an exception. Contact CometAPI support; retrying will not help.',
	[ACCOUNT_ARREARS_CODE]: 'Your CometAPI balance or quota does not cover this request: the account is in arrears. Top it up, then run the item again.',
	[PACK_EXHAUSTED_CODE]: 'Your CometAPI balance or quota does not cover this request: the resource pack is used up or expired. Renew it or buy another, then run the item again.',
};

function isAuthError(error: ProviderError): boolean {
	return error.httpStatus === 401 || error.httpStatus === 403 || isAuthErrorCode(error.code);
}

/**
 * A Kling path answered 404 by something other than a task lookup: the Base URL does not lead to the
 * Kling API. Says exactly what to change: drop the Base URL's path, or use another host.
 */
export function wrongPathHint(baseUrl: string): string {
	const shown = displayBaseUrl(baseUrl);
	let root: string | undefined;
	try {
		root = new URL(baseUrl).origin;
	} catch {
		root = undefined;
	}
	if (root && root !== 'null' && root !== shown) {
		return `The Base URL ${shown} does not lead to CometAPI's Kling API: its paths (${OMNI_IMAGE_PATH}) are at the host's root. Change the Base URL in the CometAPI credential to ${root}.`;
	}
	return `${shown} does not serve CometAPI's Kling API (${OMNI_IMAGE_PATH} answered HTTP 404). Change the Base URL in the CometAPI credential to ${DEFAULT_BASE_URL}, or to the address your proxy serves CometAPI's Kling API at.`;
}

function notApiAnswerHint(error: ProviderError, baseUrl: string): string {
	if (error.httpStatus === 404) return wrongPathHint(baseUrl);
	return `Something other than CometAPI's API answered (a proxy, a gateway or a web server). Check the Base URL in the CometAPI credential (${displayBaseUrl(baseUrl)}); if it is right, try again later.`;
}

/** What the user can do about an error, by the code family the provider documents. */
function hintFor(error: ProviderError, call: CallInfo): string | undefined {
	if (error.notApiAnswer) return notApiAnswerHint(error, call.baseUrl);
	if (error.account) {
		return (
			ACCOUNT_HINTS[String(error.code)] ??
			'Your CometAPI balance or quota does not cover this request. Top it up, then run the item again.'
		);
	}
	if (isAuthError(error)) return 'Check the API key in the CometAPI credential.';
	if (isTaskNotFound(error)) return 'The task ID is unknown, expired or belongs to another account.';
	if (error.httpStatus === 404) return wrongPathHint(call.baseUrl);
	if (Number(error.code) === PARALLEL_LIMIT_CODE) {
		return 'Too many tasks of your account were running at once for too long. Raise "Max Wait Time", or run fewer tasks at once.';
	}
	if (error.httpStatus === 429 || Number(error.code) === RATE_LIMIT_CODE) {
		return 'CometAPI kept rate-limiting after several retries. Lower "Max Concurrent Requests" or try again later.';
	}
	if (error.httpStatus === 400 || error.httpStatus === 422) {
		return 'CometAPI rejected the request as it is. Change the prompt, reference images or fields it names, then run the item again.';
	}
	return undefined;
}

export function apiError(node: INode, call: CallInfo, error: ProviderError, transient: boolean): CometApiError {
	const response: JsonObject = {
		message: error.message,
		http_status: error.httpStatus,
		code: (error.code ?? null) as JsonObject[string],
		request_id: error.requestId ?? null,
	};
	const apiFailure = new CometApiError(
		node,
		response,
		{
			message: withItem(`CometAPI could not ${callLabel(call)}: ${error.summary}`, call.itemIndex),
			description: hintFor(error, call),
			httpCode: String(error.httpStatus),
			itemIndex: call.itemIndex,
		},
		transient,
	);
	apiFailure.taskNotFound = call.kind === 'query' && isTaskNotFound(error);
	return apiFailure;
}

export function createMayExistError(node: INode, call: CallInfo, what: string): CometApiError {
	const lookup = call.externalTaskId
		? `Look for external task ID "${call.externalTaskId}" in your CometAPI task log before running this item again.`
		: 'Check your CometAPI task log before running this item again; turn on "Generate External Task ID" to make such tasks easy to find.';
	const failure = new CometApiError(
		node,
		{ message: what },
		{
			message: withItem(
				`The create request got no usable answer (${what}): the task may have been created and charged`,
				call.itemIndex,
			),
			description: `It was not sent again, so that nothing is paid for twice. ${lookup}`,
			itemIndex: call.itemIndex,
		},
	);
	failure.mayExist = true;
	return failure;
}

export function unreachableError(node: INode, call: CallInfo, failure: TransportFailure): CometApiError {
	const what = describeTransportFailure(failure);
	return new CometApiError(
		node,
		{ message: what },
		{
			message: withItem(`Could not reach CometAPI at ${displayBaseUrl(call.baseUrl)} to ${callLabel(call)}: ${what}`, call.itemIndex),
			description: 'Check the Base URL in the CometAPI credential and the network.',
			itemIndex: call.itemIndex,
		},
		true,
	);
}

/**
 * A Base URL that is no web address (no scheme, a typo in it): nothing was sent. Said before sending,
 * because the HTTP client's failure for it would look like a connection lost mid-request, which for a
 * create means "may have been charged".
 */
export function invalidBaseUrlError(node: INode, call: CallInfo): CometApiError {
	return new CometApiError(
		node,
		{ message: 'invalid Base URL' },
		{
			message: withItem(`The Base URL in the CometAPI credential is not an http(s) address, so CometAPI could not ${callLabel(call)}; nothing was sent`, call.itemIndex),
			description: `Set the Base URL to a full address starting with https://, for CometAPI ${DEFAULT_BASE_URL}.`,
			itemIndex: call.itemIndex,
		},
	);
}

export function cancelledError(node: INode, call: CallInfo): CometApiError {
	return new CometApiError(
		node,
		{ message: 'cancelled' },
		{
			message: withItem(`The execution was stopped before CometAPI could ${callLabel(call)}`, call.itemIndex),
			itemIndex: call.itemIndex,
		},
	);
}

export function parallelLimitError(node: INode, call: CallInfo, error: ProviderError): CometApiError {
	const failure = apiError(node, call, error, true);
	failure.parallelLimit = true;
	return failure;
}
