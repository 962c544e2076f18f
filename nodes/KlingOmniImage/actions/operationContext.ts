import type { IDataObject, IExecuteFunctions } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { tokenKey, type TokenKey } from '../../shared/callback/token';
import { CREDENTIAL_TYPE, normalizeBaseUrl } from '../../shared/contract';
import { asNodeError, secretRedactor } from '../../shared/errors';
import type { RetryPolicy } from '../../shared/request/retry';
import { createRequestSession, type RequestSession } from '../../shared/request/session';
import type { OutputMode } from '../../shared/task/output';
import { readImageOutputSettings } from '../../shared/options/download';
import {
	readMaxConcurrentRequests,
	readNumberOption,
	readRequestTimeoutMs,
	readTimerSeconds,
} from '../../shared/options/request';
import { POLLING_OPTIONS } from '../descriptions/common';
import type { ItemFailure, ItemOutcome, RunSettings, TaskJob } from '../runner/jobTypes';

export interface PreparedJobs<J extends TaskJob> {
	jobs: J[];
	failures: ItemFailure[];
}

/** What every operation gets from the router: one request session and the node's options. */
export interface OperationContext {
	session: RequestSession;
	/** Signs Callback URLs (derived from the API key, which it does not reveal). */
	callbackKey: TokenKey;
	settings: Omit<RunSettings, 'waitForCompletion'>;
	/**
	 * Turns every input item into a job before anything is sent. Without "Continue On Fail" the
	 * first bad item throws here, so a bad item 7 cannot leave items 1–6 paid for and unreported.
	 */
	prepare<J extends TaskJob>(build: (itemIndex: number) => Promise<J>): Promise<PreparedJobs<J>>;
	/** Puts the outcomes of prepared jobs and of rejected items back in input order. */
	merge(prepared: PreparedJobs<TaskJob>, outcomes: ItemOutcome[]): ItemOutcome[];
}

interface NodeOptions {
	pollInterval?: number;
	maxWaitTime?: number;
	outputMode?: OutputMode;
	binaryPropertyName?: string;
	downloadWatermarked?: boolean;
	maxDownloadSizeMb?: number;
	maxConcurrentRequests?: number;
	requestTimeout?: number;
}

function failWith(ctx: IExecuteFunctions): (message: string) => Error {
	return (message) => new NodeOperationError(ctx.getNode(), message);
}

/** A switch that an expression may have set: anything but true or false would silently mean "off". */
export function readSwitch(ctx: IExecuteFunctions, name: string, label: string, fallback: boolean): boolean {
	const value = ctx.getNodeParameter(name, 0, fallback) as unknown;
	if (typeof value === 'boolean') return value;
	throw new NodeOperationError(ctx.getNode(), `"${label}" must be true or false, got ${value === undefined ? 'nothing' : `"${String(value)}"`}`, {
		description: 'Turn the switch on or off, or make its expression return true or false.',
	});
}

function readSettings(ctx: IExecuteFunctions, options: NodeOptions): OperationContext['settings'] {
	const fail = failWith(ctx);
	return {
		pollIntervalMs: readTimerSeconds(options.pollInterval, POLLING_OPTIONS.pollInterval, fail) * 1000,
		maxWaitMs: readNumberOption(options.maxWaitTime, POLLING_OPTIONS.maxWaitTime, fail) * 1000,
		download: readImageOutputSettings(options as IDataObject, fail),
		// The one place "Continue On Fail" is read: everything else follows failFast.
		failFast: !ctx.continueOnFail(),
		maxConcurrentRequests: readMaxConcurrentRequests(options.maxConcurrentRequests, fail),
	};
}

function createSession(
	ctx: IExecuteFunctions,
	credentials: IDataObject,
	options: NodeOptions,
	settings: OperationContext['settings'],
	retry: RetryPolicy,
): RequestSession {
	return createRequestSession({
		baseUrl: normalizeBaseUrl(credentials.baseUrl),
		timeoutMs: readRequestTimeoutMs(options.requestTimeout, failWith(ctx)),
		maxConcurrentRequests: settings.maxConcurrentRequests,
		retry,
		signal: ctx.getExecutionCancelSignal?.(),
		// Max Wait Time from the start of the run: no task query retries past it.
		deadlineAt: Date.now() + settings.maxWaitMs,
		redact: secretRedactor(credentials.apiKey),
	});
}

export async function createOperationContext(ctx: IExecuteFunctions, retry: RetryPolicy): Promise<OperationContext> {
	// Options are read once for the whole run: the items of a batch share one polling loop and one set of limits.
	const options = ctx.getNodeParameter('options', 0, {}) as IDataObject as NodeOptions;
	const settings = readSettings(ctx, options);
	const credentials = await ctx.getCredentials(CREDENTIAL_TYPE);
	const session = createSession(ctx, credentials, options, settings, retry);
	const itemCount = ctx.getInputData().length;

	return {
		session,
		callbackKey: tokenKey(credentials.apiKey),
		settings,
		async prepare<J extends TaskJob>(build: (itemIndex: number) => Promise<J>) {
			const prepared: PreparedJobs<J> = { jobs: [], failures: [] };
			for (let itemIndex = 0; itemIndex < itemCount; itemIndex++) {
				try {
					prepared.jobs.push(await build(itemIndex));
				} catch (error) {
					const nodeError = asNodeError(ctx.getNode(), error, itemIndex);
					if (settings.failFast) throw nodeError;
					prepared.failures.push({ itemIndex, error: nodeError });
				}
			}
			return prepared;
		},
		merge(prepared, outcomes) {
			return [...prepared.failures, ...outcomes].sort((a, b) => a.itemIndex - b.itemIndex);
		},
	};
}
