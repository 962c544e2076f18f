import type { IBinaryData, IHttpRequestOptions } from 'n8n-workflow';

import type { NodeContext } from '../nodeContext';
import { downloadError, missingImageUrlError, missingWatermarkError, noImagesError } from '../errors/task';
import { withinTimeout } from '../request/requestTimeout';
import { causeChain, describeTransportFailure, transportFailureOf } from '../request/network';
import { parseRetryAfter, withRetries, type Attempt, type RetryBudget } from '../request/retry';
import { requestSignal, type RequestSession } from '../request/session';
import type { KlingTask, TaskImage } from '../task/task';
import { extensionForMimeType } from './imageInfo';
import {
	DownloadFailure,
	formatMb,
	headerText,
	limitSize,
	readHead,
	resolveMimeType,
	type ByteStream,
} from './imageStream';

interface StreamResponse {
	statusCode: number;
	headers: Record<string, unknown>;
	body: ByteStream;
}

export interface DownloadedImage {
	image: TaskImage;
	sourceUrl: string;
	binary: IBinaryData;
}

function safeFileStem(text: string): string {
	return text.replace(/[^\w.-]+/g, '_').slice(0, 80) || 'task';
}

/** One image to fetch: where from, what to name it, how large it may be. */
interface ImageRequest {
	url: string;
	fileStem: string;
	maxBytes: number;
}

/** Why a URL cannot be downloaded at all (retrying would not help), or undefined when it can. */
function unusableUrl(url: string): string | undefined {
	let parsed: URL;
	try {
		parsed = new URL(url);
	} catch {
		return 'it is not an absolute http(s) URL';
	}
	if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
		return `its scheme is "${parsed.protocol}", not http or https`;
	}
	return undefined;
}

async function downloadOnce(ctx: NodeContext, session: RequestSession, request: ImageRequest): Promise<IBinaryData> {
	// Plain httpRequest, never the authenticated one: the API key must not reach the image host,
	// also when it redirects (followed, as image hosts do, without credentials).
	const options: IHttpRequestOptions = {
		method: 'GET',
		url: request.url,
		encoding: 'stream',
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
		timeout: session.timeoutMs,
		abortSignal: requestSignal(session),
	};
	return await withinTimeout(
		session.timeoutMs,
		async () => (await ctx.helpers.httpRequest(options)) as StreamResponse,
		async (response) => await storeImage(ctx, response, request),
	);
}

/** Checks the answer and streams its body into n8n's binary data. */
async function storeImage(ctx: NodeContext, response: StreamResponse, request: ImageRequest): Promise<IBinaryData> {
	const { fileStem, maxBytes } = request;
	const body = response.body;
	const status = response.statusCode;
	if (status < 200 || status >= 300) {
		body.destroy();
		const transient = status === 429 || status >= 500;
		const reason =
			status === 403 || status === 404 || status === 410
				? `the image URL answered HTTP ${status}: it has probably expired`
				: `the image server answered HTTP ${status}`;
		throw new DownloadFailure(reason, transient, parseRetryAfter(response.headers['retry-after']));
	}
	const declaredLength = Number(headerText(response.headers, 'content-length'));
	const expectedBytes = Number.isFinite(declaredLength) && declaredLength > 0 ? declaredLength : undefined;
	if (expectedBytes !== undefined && expectedBytes > maxBytes) {
		body.destroy();
		throw new DownloadFailure(
			`the image is ${formatMb(expectedBytes)}, over the ${formatMb(maxBytes)} download limit`,
			false,
		);
	}

	const checked = resolveMimeType(await readHead(body, 16), headerText(response.headers, 'content-type'));
	if ('problem' in checked) {
		body.destroy();
		throw new DownloadFailure(checked.problem, false);
	}
	const mimeType = checked.mimeType;
	const fileName = `${fileStem}.${extensionForMimeType(mimeType)}`;
	const binary = await ctx.helpers.prepareBinaryData(
		limitSize(body, maxBytes),
		fileName,
		mimeType,
	);
	// Node's HTTP client already fails a body cut short of its Content-Length; this is the backstop.
	if (expectedBytes !== undefined && binary.bytes !== undefined && binary.bytes < expectedBytes) {
		throw new DownloadFailure(
			`the download was cut off after ${binary.bytes} of ${expectedBytes} bytes`,
			true,
		);
	}
	return binary;
}

/** The DownloadFailure behind an error, if any: the binary data store may wrap stream errors. */
function findDownloadFailure(error: unknown): DownloadFailure | undefined {
	return causeChain(error).find((link): link is DownloadFailure => link instanceof DownloadFailure);
}

interface FailureReason {
	message: string;
	transient: boolean;
	retryAfterMs?: number;
	cancelled: boolean;
}

function failureReason(error: unknown, signal?: AbortSignal): FailureReason {
	const known = findDownloadFailure(error);
	if (known) {
		return { message: known.message, transient: known.transient, retryAfterMs: known.retryAfterMs, cancelled: false };
	}
	const failure = transportFailureOf(error, signal);
	return {
		message: describeTransportFailure(failure),
		transient: failure.kind !== 'cancelled',
		cancelled: failure.kind === 'cancelled',
	};
}

/** Retries what may work on a second try (5xx, 429, a cut connection); the rest fails at once. */
function retryOrFail(error: unknown, session: RequestSession, budget: RetryBudget): Attempt<never> {
	const reason = failureReason(error, session.signal);
	if (reason.cancelled) throw new StoppedDownload();
	const delay = reason.transient ? budget.next(reason.retryAfterMs) : undefined;
	if (delay === undefined) throw new Error(reason.message);
	return { retryInMs: delay };
}

class StoppedDownload extends Error {
	constructor() {
		super('the execution was stopped');
	}
}

/**
 * Downloads one image into n8n's binary data; the error says why it could not be fetched. The
 * run's deadline does not cut download retries short: the task has been paid for by now.
 */
async function downloadWithRetry(ctx: NodeContext, session: RequestSession, request: ImageRequest): Promise<IBinaryData> {
	const problem = unusableUrl(request.url);
	if (problem) throw new Error(problem);
	const limits = { retry: session.retry, signal: session.signal };
	return await withRetries(limits, () => new StoppedDownload(), async (budget) => {
		try {
			return { done: await session.downloadLimit(async () => await downloadOnce(ctx, session, request)) };
		} catch (error) {
			return retryOrFail(error, session, budget);
		}
	});
}

export interface DownloadSettings {
	watermarked: boolean;
	maxDownloadBytes: number;
}

/**
 * Picks the URL to download for each image. A succeeded task was charged, so a missing URL is an
 * error naming the task and image, never an item silently left out.
 */
function sourceUrlOf(
	ctx: NodeContext,
	task: KlingTask,
	image: TaskImage,
	settings: DownloadSettings,
	itemIndex: number,
): string {
	if (!settings.watermarked) {
		if (image.url) return image.url;
		throw missingImageUrlError(ctx.getNode(), task.task_id, image.index, itemIndex);
	}
	if (image.watermark_url) return image.watermark_url;
	throw missingWatermarkError(ctx.getNode(), task.task_id, image.index, itemIndex);
}

/** File names without extension, one per image, unique even when the API repeats an index. */
function fileStems(task: KlingTask, watermarked: boolean): string[] {
	const used = new Set<string>();
	return task.images.map((image, position) => {
		const base = `kling-${safeFileStem(task.task_id)}-${image.index}${watermarked ? '-watermarked' : ''}`;
		const stem = used.has(base) ? `${base}-${position}` : base;
		used.add(stem);
		return stem;
	});
}

/** Downloads every image of a succeeded task, all at once within the session's download limit. */
export async function downloadTaskImages(
	ctx: NodeContext,
	session: RequestSession,
	task: KlingTask,
	itemIndex: number,
	settings: DownloadSettings,
): Promise<DownloadedImage[]> {
	if (task.images.every((image) => !image.url && !image.watermark_url)) {
		throw noImagesError(ctx.getNode(), task.task_id, itemIndex);
	}
	const stems = fileStems(task, settings.watermarked);
	const sources = task.images.map((image, position) => ({
		image,
		sourceUrl: sourceUrlOf(ctx, task, image, settings, itemIndex),
		fileStem: stems[position],
	}));
	return await Promise.all(
		sources.map(async ({ image, sourceUrl, fileStem }) => {
			try {
				const binary = await downloadWithRetry(ctx, session, {
					url: sourceUrl,
					fileStem,
					maxBytes: settings.maxDownloadBytes,
				});
				return { image, sourceUrl, binary };
			} catch (error) {
				throw downloadError(ctx.getNode(), task.task_id, image.index, (error as Error).message, itemIndex);
			}
		}),
	);
}
