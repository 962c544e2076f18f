import type { IDataObject, INodeExecutionData, IWebhookFunctions, IWebhookResponseData } from 'n8n-workflow';

import { queryTask } from '../shared/api/client';
import type { TokenKey } from '../shared/callback/token';
import { CometApiError } from '../shared/errors/api';
import { pause } from '../shared/request/pause';
import type { RetryPolicy } from '../shared/request/retry';
import { createRequestSession } from '../shared/request/session';
import { taskItem, unpaired, type ImageOutputSettings } from '../shared/task/output';
import {
	hasUnknownStatus,
	isFinalStatus,
	isTerminal,
	isUnfinishedStatus,
	normalizeTask,
	type KlingTask,
} from '../shared/task/task';
import { allows, NOT_FOR_THIS_TRIGGER, readAccess, refuseBeforeQuery } from './access';
import { readCallback, type CallbackRequest } from './callback';
import { droppedThrough, MARK_RETENTION_MS, type TaskLedger } from './ledger';

export interface TriggerSettings {
	downloadImages: boolean;
	emitUnfinished: boolean;
	output: ImageOutputSettings;
	requestTimeoutMs: number;
}

/**
 * How long a callback that says "final" waits for the query to agree: the provider updates a task
 * in one place and serves queries from another, so for a moment the query may still say
 * "processing", or not know a brand-new task. The waits between the re-checks, in order.
 */
export interface RecheckPolicy {
	delaysMs: number[];
}

/** Five more looks within about 15 seconds, then an answer that invites a retry. */
export const DEFAULT_RECHECK: RecheckPolicy = { delaysMs: [1_000, 2_000, 3_000, 4_000, 5_000] };

export interface CallbackSettings extends TriggerSettings {
	baseUrl: string;
	/** Checks callback tokens; derived from the API key. */
	tokenKey: TokenKey;
	recheck: RecheckPolicy;
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

/** Marks are per workflow, node and mode, so a test URL's calls do not count for the published workflow. */
function scopeKey(ctx: IWebhookFunctions): string {
	return `${String(ctx.getWorkflow().id ?? '')}:${ctx.getNode().id}:${ctx.getMode()}`;
}

/** Static data is the workflow's database record; test calls (manual mode) are not saved by n8n anyway. */
function staticDataOf(ctx: IWebhookFunctions): IDataObject | undefined {
	if (ctx.getMode() === 'manual') return undefined;
	return ctx.getWorkflowStaticData('node');
}

type Verified = { ok: true; task: KlingTask } | { ok: false; status: number; message: string; notFound?: boolean };

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
			return { ok: false, status: 404, message: `CometAPI does not know task ${taskId}`, notFound: true };
		}
		// The provider retries a failed delivery; the error itself is not for an unauthenticated caller.
		return { ok: false, status: 503, message: `Could not check task ${taskId} with CometAPI; try again later` };
	}
}

/** Whether another look may change the answer: the query may lag a final callback. */
function lagging(verified: Verified): boolean {
	return verified.ok ? !isTerminal(verified.task) : verified.notFound === true;
}

/**
 * Queries a task that its callback calls final; while the query does not agree yet, looks again
 * after each of the policy's waits. Returns the last answer.
 */
async function verifyFinal(ctx: IWebhookFunctions, settings: CallbackSettings, taskId: string): Promise<Verified> {
	let verified = await verify(ctx, settings, taskId);
	for (const delayMs of settings.recheck.delaysMs) {
		if (!lagging(verified)) break;
		await pause(delayMs);
		verified = await verify(ctx, settings, taskId);
	}
	return verified;
}

function waitedSeconds(settings: CallbackSettings): number {
	return Math.round(settings.recheck.delaysMs.reduce((sum, ms) => sum + ms, 0) / 1000);
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
	// now. Nothing is written when static data holds them all already.
	if (staticData) settings.ledger.persist(scopeKey(ctx), staticData);
	return result;
}

async function handle(
	ctx: IWebhookFunctions,
	settings: CallbackSettings,
	staticData: IDataObject | undefined,
): Promise<IWebhookResponseData> {
	const request = ctx.getRequestObject() as unknown as CallbackRequest;
	const claim = readCallback(request);
	if (!claim.ok) return refuse(ctx, claim.httpStatus, claim.message);
	const { taskId, claimedStatus } = claim;

	// Nothing is queried for a callback that cannot be for a task created for this trigger.
	const access = readAccess(request);
	if (!access.ok) return refuse(ctx, access.httpStatus, access.message);
	const marks = { now: Date.now(), retentionMs: MARK_RETENTION_MS, droppedThrough: droppedThrough(staticData) };
	const refused = refuseBeforeQuery(settings.tokenKey, access, claim.externalTaskId, marks);
	if (refused) return refuse(ctx, refused.httpStatus, refused.message);

	// A callback about an unfinished task is not worth a query unless unfinished statuses are wanted.
	if (isUnfinishedStatus(claimedStatus) && !settings.emitUnfinished) {
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

	const claimsFinal = isFinalStatus(claimedStatus);
	const verified = claimsFinal ? await verifyFinal(ctx, settings, taskId) : await verify(ctx, settings, taskId);
	if (!verified.ok) {
		held.release();
		if (claimsFinal && verified.notFound) return notConfirmed(ctx, settings, taskId, 'does not know the task yet');
		return refuse(ctx, verified.status, verified.message);
	}
	const { task } = verified;
	if (!allows(settings.tokenKey, access, task.external_task_id)) {
		held.release();
		return refuse(ctx, NOT_FOR_THIS_TRIGGER.httpStatus, NOT_FOR_THIS_TRIGGER.message);
	}

	if (!isTerminal(task)) {
		held.release();
		return unfinished(ctx, settings, scope, task, claimsFinal);
	}

	// Marked before answering: from here on every repeat of this callback is a duplicate.
	held.confirm();
	answer(ctx, 200, { received: true, task_id: taskId, status: task.status, started: true });
	// The images are downloaded by execute() inside the execution (downloads.ts), which also drops a
	// task delivered before (delivered.ts); answering and returning now lets n8n save the mark at once.
	return started([taskItem(task, 0)]);
}

/**
 * The callback calls the task final and the query still does not, after every re-check: 503, so
 * that a provider that retries deliveries sends it again (the fallback recipe covers one that does not).
 */
function notConfirmed(ctx: IWebhookFunctions, settings: CallbackSettings, taskId: string, what: string): IWebhookResponseData {
	ctx.logger.warn(`Kling trigger: task ${taskId} was called final by its callback, but CometAPI ${what} after ${waitedSeconds(settings)} s`);
	const res = ctx.getResponseObject() as unknown as CallbackResponse & { setHeader?(name: string, value: string): unknown };
	res.setHeader?.('Retry-After', '30');
	return refuse(ctx, 503, `CometAPI does not confirm that task ${taskId} is finished yet; try again later`);
}

/** A task the API reports as not finished: started only when unfinished statuses are wanted. */
function unfinished(
	ctx: IWebhookFunctions,
	settings: CallbackSettings,
	scope: string,
	task: KlingTask,
	claimsFinal: boolean,
): IWebhookResponseData {
	const taskId = task.task_id;
	if (claimsFinal) return notConfirmed(ctx, settings, taskId, `still reports "${task.status}"`);
	// A final word this node does not know must not be answered as "not finished" and forgotten.
	if (hasUnknownStatus(task)) return notConfirmed(ctx, settings, taskId, `reports "${task.status}", a status this node does not know,`);
	if (settings.emitUnfinished && isUnfinishedStatus(task.status) && settings.ledger.markStatus(scope, taskId, task.status)) {
		answer(ctx, 200, { received: true, task_id: taskId, status: task.status, started: true });
		return started([taskItem(task, 0)]);
	}
	answer(ctx, 200, { received: true, task_id: taskId, status: task.status, started: false, reason: 'the task is not finished' });
	return { noWebhookResponse: true };
}
