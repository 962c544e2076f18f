import type { IDataObject, INodeExecutionData, IWebhookFunctions, IWebhookResponseData } from 'n8n-workflow';

import { queryTask } from '../shared/api/client';
import { CometApiError } from '../shared/errors/api';
import { downloadTaskImages } from '../shared/images/download';
import type { ImageOutputSettings } from '../shared/options/download';
import type { RetryPolicy } from '../shared/request/retry';
import { createRequestSession } from '../shared/request/session';
import { imageItems, taskItem } from '../shared/task/output';
import { isTerminal, normalizeTask, type KlingTask } from '../shared/task/task';
import { isFinalStatus, readCallback, type CallbackRequest } from './callback';
import type { TaskLedger } from './ledger';

export interface TriggerSettings {
	downloadImages: boolean;
	emitUnfinished: boolean;
	output: ImageOutputSettings;
	requestTimeoutMs: number;
}

export interface CallbackSettings extends TriggerSettings {
	baseUrl: string;
	/** Scrubs the API key out of provider texts before they reach logs or output. */
	redact: (text: string) => string;
	retryPolicy: RetryPolicy;
	ledger: TaskLedger;
}

/** The verification query must answer within the provider's callback timeout. */
export const VERIFY_TIMEOUT_MS = 10_000;

/** At most three tries within about six seconds (or the given policy, when it is stricter). */
export function verifyPolicy(policy: RetryPolicy): RetryPolicy {
	return {
		maxAttempts: Math.min(3, policy.maxAttempts),
		maxRetryTimeMs: Math.min(6_000, policy.maxRetryTimeMs),
		baseDelayMs: Math.min(300, policy.baseDelayMs),
		maxDelayMs: Math.min(2_000, policy.maxDelayMs),
	};
}

/** The parts of Express's response the trigger uses. */
interface CallbackResponse {
	status(code: number): CallbackResponse;
	json(body: unknown): unknown;
}

/** Answers the caller now; the webhook then returns without a response of its own. */
function answer(ctx: IWebhookFunctions, status: number, body: IDataObject): void {
	const res = ctx.getResponseObject() as unknown as CallbackResponse;
	res.status(status).json(body);
}

function refuse(ctx: IWebhookFunctions, status: number, message: string): IWebhookResponseData {
	answer(ctx, status, { received: false, error: message });
	return { noWebhookResponse: true };
}

/** Trigger output carries no pairedItem: there is no input item to point at. */
function unpaired(items: INodeExecutionData[]): INodeExecutionData[] {
	return items.map(({ pairedItem, ...item }) => {
		void pairedItem;
		return item;
	});
}

/** Marks are per workflow, node and mode, so a test URL's calls do not count for the published workflow. */
function scopeKey(ctx: IWebhookFunctions): string {
	return `${String(ctx.getWorkflow().id ?? '')}:${ctx.getNode().id}:${ctx.getMode()}`;
}

/** Static data is the workflow's database record; test calls (manual mode) are not saved by n8n anyway. */
function staticDataOf(ctx: IWebhookFunctions): IDataObject | undefined {
	if (ctx.getMode() === 'manual') return undefined;
	return ctx.getWorkflowStaticData('node');
}

type Verified = { ok: true; task: KlingTask } | { ok: false; status: number; message: string };

/** Reads the task from the API with the credential: the only source of what is emitted. */
async function verify(ctx: IWebhookFunctions, settings: CallbackSettings, taskId: string): Promise<Verified> {
	const session = createRequestSession({
		baseUrl: settings.baseUrl,
		timeoutMs: Math.min(VERIFY_TIMEOUT_MS, settings.requestTimeoutMs),
		maxConcurrentRequests: 1,
		retry: verifyPolicy(settings.retryPolicy),
		redact: settings.redact,
	});
	try {
		return { ok: true, task: normalizeTask(await queryTask(ctx, session, 0, taskId), taskId) };
	} catch (error) {
		ctx.logger.warn(`Kling trigger: could not verify task ${taskId}: ${(error as Error).message}`);
		if (error instanceof CometApiError && error.taskNotFound) {
			return { ok: false, status: 404, message: `CometAPI does not know task ${taskId}` };
		}
		// The provider retries a failed delivery; the error itself is not for an unauthenticated caller.
		return { ok: false, status: 503, message: `Could not check task ${taskId} with CometAPI; try again later` };
	}
}

/** What Get Task with Download Images outputs for the task; a failed download is an item with its reason. */
async function taskOutput(ctx: IWebhookFunctions, settings: CallbackSettings, task: KlingTask): Promise<INodeExecutionData[]> {
	if (!settings.downloadImages || task.status !== 'succeed') return [taskItem(task, 0)];
	const session = createRequestSession({
		baseUrl: settings.baseUrl,
		timeoutMs: settings.requestTimeoutMs,
		maxConcurrentRequests: 10,
		retry: settings.retryPolicy,
		redact: settings.redact,
	});
	try {
		const downloads = await downloadTaskImages(ctx, session, task, 0, settings.output);
		return imageItems(task, downloads, 0, settings.output);
	} catch (error) {
		const failure = error as Error & { description?: string };
		ctx.logger.warn(`Kling trigger: ${failure.message}`);
		return [
			{
				json: {
					...task,
					error: failure.message.replace(/ \[item 0\]$/, ''),
					error_description: failure.description ?? null,
				},
			},
		];
	}
}

function started(items: INodeExecutionData[]): IWebhookResponseData {
	return { noWebhookResponse: true, workflowData: [unpaired(items)] };
}

/**
 * One callback: read the task id, and unless the task was emitted already or the callback is about
 * an unfinished task, query the task and start the workflow once with what the API says.
 */
export async function handleCallback(ctx: IWebhookFunctions, settings: CallbackSettings): Promise<IWebhookResponseData> {
	const staticData = staticDataOf(ctx);
	const result = await handle(ctx, settings, staticData);
	// n8n writes static data back whole after this returns, over what other callbacks saved
	// meanwhile: every callback (duplicates too) writes all marks this process holds, as they are
	// now, after any download. Nothing is written when static data holds them all already.
	if (staticData) settings.ledger.persist(scopeKey(ctx), staticData);
	return result;
}

async function handle(
	ctx: IWebhookFunctions,
	settings: CallbackSettings,
	staticData: IDataObject | undefined,
): Promise<IWebhookResponseData> {
	const claim = readCallback(ctx.getRequestObject() as unknown as CallbackRequest);
	if (!claim.ok) return refuse(ctx, claim.httpStatus, claim.message);
	const { taskId, claimedStatus } = claim;

	// A callback about an unfinished task is not worth a query unless unfinished statuses are wanted.
	const claimsFinal = claimedStatus === undefined || isFinalStatus(claimedStatus);
	if (!claimsFinal && !settings.emitUnfinished) {
		answer(ctx, 200, { received: true, task_id: taskId, started: false, reason: 'the task is not finished' });
		return { noWebhookResponse: true };
	}

	const scope = scopeKey(ctx);
	const { ledger } = settings;
	const held = await ledger.claim(scope, taskId, staticData);
	if (held.kind === 'duplicate') {
		answer(ctx, 200, { received: true, task_id: taskId, started: false, reason: 'already handled' });
		return { noWebhookResponse: true };
	}

	const verified = await verify(ctx, settings, taskId);
	if (!verified.ok) {
		held.release();
		return refuse(ctx, verified.status, verified.message);
	}
	const { task } = verified;

	if (!isTerminal(task)) {
		held.release();
		if (settings.emitUnfinished && ledger.markStatus(scope, taskId, task.status)) {
			answer(ctx, 200, { received: true, task_id: taskId, status: task.status, started: true });
			return started([taskItem(task, 0)]);
		}
		answer(ctx, 200, { received: true, task_id: taskId, status: task.status, started: false, reason: 'the task is not finished' });
		return { noWebhookResponse: true };
	}

	// Marked before answering: from here on every repeat of this callback is a duplicate.
	held.confirm();
	// Acknowledge first, then download: the provider may time out a slow answer.
	answer(ctx, 200, { received: true, task_id: taskId, status: task.status, started: true });
	return started(await taskOutput(ctx, settings, task));
}
