import type { IDataObject, IExecuteFunctions } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { CREDENTIAL_TYPE, normalizeBaseUrl } from '../../shared/contract';
import { asNodeError, secretRedactor } from '../../shared/errors';
import type { RetryPolicy } from '../../shared/request/retry';
import { createRequestSession, type RequestSession } from '../../shared/request/session';
import type { OutputMode } from '../../shared/task/output';
import { readImageOutputSettings } from '../../shared/options/download';
import type { ItemFailure, ItemOutcome, RunSettings, TaskJob } from '../runner/jobs';

export interface PreparedJobs<J extends TaskJob> {
	jobs: J[];
	failures: ItemFailure[];
}

/** What every operation gets from the router: one request session and the node's options. */
export interface OperationContext {
	session: RequestSession;
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

function positiveNumber(ctx: IExecuteFunctions, value: unknown, label: string, fallback: number, min = 1): number {
	if (value === undefined || value === null || value === '') return fallback;
	const number = Number(value);
	if (!Number.isFinite(number) || number < min) {
		throw new NodeOperationError(ctx.getNode(), `Option "${label}" must be a number of at least ${min}, got "${String(value)}"`);
	}
	return number;
}

/**
 * Seconds that end up in a timer: Node fires a timer past about 24.8 days at once, which would
 * make every request time out before it is sent, or polling run without pause.
 */
const MAX_SECONDS = 3600;

function seconds(ctx: IExecuteFunctions, value: unknown, label: string, fallback: number): number {
	const number = positiveNumber(ctx, value, label, fallback);
	if (number > MAX_SECONDS) {
		throw new NodeOperationError(ctx.getNode(), `Option "${label}" must be at most ${MAX_SECONDS} seconds, got "${String(value)}"`);
	}
	return number;
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
	return {
		pollIntervalMs: seconds(ctx, options.pollInterval, 'Poll Interval', 20) * 1000,
		maxWaitMs: positiveNumber(ctx, options.maxWaitTime, 'Max Wait Time', 600) * 1000,
		download: readImageOutputSettings(options as IDataObject, (message) => new NodeOperationError(ctx.getNode(), message)),
		// The one place "Continue On Fail" is read: everything else follows failFast.
		failFast: !ctx.continueOnFail(),
		maxConcurrentRequests: Math.floor(positiveNumber(ctx, options.maxConcurrentRequests, 'Max Concurrent Requests', 10)),
	};
}

async function createSession(
	ctx: IExecuteFunctions,
	options: NodeOptions,
	settings: OperationContext['settings'],
	retry: RetryPolicy,
): Promise<RequestSession> {
	const credentials = await ctx.getCredentials(CREDENTIAL_TYPE);
	return createRequestSession({
		baseUrl: normalizeBaseUrl(credentials.baseUrl),
		timeoutMs: seconds(ctx, options.requestTimeout, 'Request Timeout', 60) * 1000,
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
	const session = await createSession(ctx, options, settings, retry);
	const itemCount = ctx.getInputData().length;

	return {
		session,
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
