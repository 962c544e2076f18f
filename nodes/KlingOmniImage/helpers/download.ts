import type { IBinaryData, IExecuteFunctions, IHttpRequestOptions } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { parseRetryAfter, retryDelay } from '../transport/backoff';
import { requestSignal, type RequestSession } from '../transport';
import { causeChain, describeTransportFailure, transportFailureOf } from '../transport/network';
import { extensionForMimeType, MIME_TYPES, sniffImageFormat } from './imageInfo';
import { pause } from './sleep';
import type { KlingTask, TaskImage } from './task';

/**
 * Node's Readable, named through n8n's own helper signature: community nodes may not import
 * 'stream' (n8n Cloud rule), and this module needs nothing from it but the type.
 */
type BinarySource = Parameters<IExecuteFunctions['helpers']['prepareBinaryData']>[0];
type ByteStream = Exclude<BinarySource, Buffer>;

export interface DownloadedImage {
	image: TaskImage;
	sourceUrl: string;
	binary: IBinaryData;
}

/** Why a download failed, and whether trying again could help. */
class DownloadFailure extends Error {
	constructor(
		message: string,
		readonly transient: boolean,
		readonly retryAfterMs?: number,
	) {
		super(message);
	}
}

interface StreamResponse {
	statusCode: number;
	headers: Record<string, unknown>;
	body: ByteStream;
}

/**
 * Passes the bytes through while counting them, and fails the stream as soon as it outgrows the
 * limit, so a wrong URL cannot fill the disk even without a Content-Length.
 */
function limitSize(stream: ByteStream, maxBytes: number): ByteStream {
	let received = 0;
	return stream.map((chunk: Buffer) => {
		received += chunk.length;
		if (received > maxBytes) {
			throw new DownloadFailure(`the image is larger than the ${formatMb(maxBytes)} download limit`, false);
		}
		return chunk;
	});
}

function formatMb(bytes: number): string {
	return `${Math.round((bytes / 1024 / 1024) * 10) / 10} MB`;
}

/** Reads the first bytes of a stream and puts them back, so the format can be checked before storing. */
async function readHead(stream: ByteStream, size: number): Promise<Buffer> {
	return await new Promise<Buffer>((resolve, reject) => {
		const chunks: Buffer[] = [];
		let length = 0;
		const finish = (error?: Error) => {
			stream.off('readable', onReadable);
			stream.off('end', onEnd);
			stream.off('error', finish);
			if (error) {
				reject(error);
				return;
			}
			const head = Buffer.concat(chunks);
			if (head.length > 0) stream.unshift(head);
			resolve(head);
		};
		const onReadable = () => {
			let chunk: Buffer | null;
			while ((chunk = stream.read() as Buffer | null) !== null) {
				chunks.push(chunk);
				length += chunk.length;
				if (length >= size) {
					finish();
					return;
				}
			}
		};
		const onEnd = () => finish();
		stream.on('readable', onReadable);
		stream.once('end', onEnd);
		stream.once('error', finish);
	});
}

function headerText(headers: Record<string, unknown>, name: string): string | undefined {
	const value = headers[name];
	return typeof value === 'string' ? value : undefined;
}

/** Types a file server may send for any file; the bytes then have to show that it is an image. */
const GENERIC_TYPES = new Set(['application/octet-stream', 'binary/octet-stream']);

/** Image types whose bytes sniffImageFormat recognises, so a body that does not match is broken. */
const KNOWN_IMAGE_TYPES = new Set([...Object.values(MIME_TYPES), 'image/jpg']);

/**
 * The MIME type to store, or why the answer is not an image. Only image content types pass (or a
 * generic binary type whose bytes are an image): an error page sent with HTTP 200 must never be
 * stored as the result.
 */
function resolveMimeType(head: Buffer, declared: string | undefined): { mimeType: string } | { problem: string } {
	const type = declared?.split(';')[0].trim().toLowerCase() || undefined;
	if (type && !type.startsWith('image/') && !GENERIC_TYPES.has(type)) {
		return { problem: `the server answered with "${type}", not an image` };
	}
	const sniffed = sniffImageFormat(head);
	if (sniffed) return { mimeType: MIME_TYPES[sniffed] };
	if (type?.startsWith('image/') && !KNOWN_IMAGE_TYPES.has(type)) return { mimeType: type };
	return { problem: `the body is not a valid image (declared as ${type ? `"${type}"` : 'no content type'})` };
}

function safeFileStem(text: string): string {
	return text.replace(/[^\w.-]+/g, '_').slice(0, 80) || 'task';
}

async function downloadOnce(
	ctx: IExecuteFunctions,
	session: RequestSession,
	url: string,
	fileStem: string,
): Promise<IBinaryData> {
	// Plain httpRequest, never the authenticated one: the API key must not reach the image host.
	const options: IHttpRequestOptions = {
		method: 'GET',
		url,
		encoding: 'stream',
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
		timeout: session.timeoutMs,
		abortSignal: requestSignal(session),
	};
	const response = (await ctx.helpers.httpRequest(options)) as StreamResponse;
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
	if (expectedBytes !== undefined && expectedBytes > session.maxDownloadBytes) {
		body.destroy();
		throw new DownloadFailure(
			`the image is ${formatMb(expectedBytes)}, over the ${formatMb(session.maxDownloadBytes)} download limit`,
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
		limitSize(body, session.maxDownloadBytes),
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

/** Downloads one image into n8n's binary data, retrying what may work on a second try. */
async function downloadWithRetry(
	ctx: IExecuteFunctions,
	session: RequestSession,
	url: string,
	fileStem: string,
	describe: (reason: string) => NodeOperationError,
): Promise<IBinaryData> {
	const startedAt = Date.now();
	for (let attempt = 1; ; attempt++) {
		try {
			return await session.downloadLimit(async () => await downloadOnce(ctx, session, url, fileStem));
		} catch (error) {
			const reason = failureReason(error, session.signal);
			if (reason.cancelled) throw describe('the execution was stopped');
			const delay = reason.transient ? retryDelay(attempt, startedAt, reason.retryAfterMs) : undefined;
			if (delay === undefined) throw describe(reason.message);
			try {
				await pause(delay, session.signal);
			} catch {
				throw describe('the execution was stopped');
			}
		}
	}
}

function downloadError(
	ctx: IExecuteFunctions,
	message: string,
	options: { itemIndex: number; description: string },
): NodeOperationError {
	const error = new NodeOperationError(ctx.getNode(), message, options);
	// n8n swaps a message that mentions ECONNRESET, ETIMEDOUT, ... for a generic text, which would
	// drop the task and item this one names.
	error.message = message;
	return error;
}

export interface DownloadSettings {
	watermarked: boolean;
}

/** Picks the URL to download for each image; an error names the task when a watermark URL is missing. */
function sourceUrlOf(
	ctx: IExecuteFunctions,
	task: KlingTask,
	image: TaskImage,
	settings: DownloadSettings,
	itemIndex: number,
): string {
	if (!settings.watermarked) return image.url;
	if (image.watermark_url) return image.watermark_url;
	throw new NodeOperationError(
		ctx.getNode(),
		`Task ${task.task_id} has no watermarked image ${image.index} to download [item ${itemIndex}]`,
		{
			itemIndex,
			description:
				'Turn on "Watermark" when creating the task, or turn off "Download Watermarked Image" to download the originals.',
		},
	);
}

/** Downloads every image of a succeeded task, all at once within the session's download limit. */
export async function downloadTaskImages(
	ctx: IExecuteFunctions,
	session: RequestSession,
	task: KlingTask,
	itemIndex: number,
	settings: DownloadSettings,
): Promise<DownloadedImage[]> {
	const sources = task.images.map((image) => ({
		image,
		sourceUrl: sourceUrlOf(ctx, task, image, settings, itemIndex),
	}));
	return await Promise.all(
		sources.map(async ({ image, sourceUrl }) => {
			const fileStem = `kling-${safeFileStem(task.task_id)}-${image.index}${settings.watermarked ? '-watermarked' : ''}`;
			const binary = await downloadWithRetry(ctx, session, sourceUrl, fileStem, (reason) =>
				downloadError(
					ctx,
					`Could not download image ${image.index} of task ${task.task_id}: ${reason} [item ${itemIndex}]`,
					{
						itemIndex,
						description: `The task succeeded and was charged. Run "Get Task" with task ID ${task.task_id} and "Download Images" on to try again while its URLs are valid.`,
					},
				),
			);
			return { image, sourceUrl, binary };
		}),
	);
}
