import type { IExecuteFunctions } from 'n8n-workflow';

import { MIME_TYPES, sniffImageFormat } from './imageInfo';

/**
 * Node's Readable, named through n8n's own helper signature: community nodes may not import
 * 'stream' (n8n Cloud rule), and this module needs nothing from it but the type.
 */
type BinarySource = Parameters<IExecuteFunctions['helpers']['prepareBinaryData']>[0];
export type ByteStream = Exclude<BinarySource, Buffer>;

/** Why a download failed, and whether trying again could help. */
export class DownloadFailure extends Error {
	constructor(
		message: string,
		readonly transient: boolean,
		readonly retryAfterMs?: number,
	) {
		super(message);
	}
}


/**
 * Passes the bytes through while counting them, and fails the stream as soon as it outgrows the
 * limit, so a wrong URL cannot fill the disk even without a Content-Length.
 */
export function limitSize(stream: ByteStream, maxBytes: number): ByteStream {
	let received = 0;
	return stream.map((chunk: Buffer) => {
		received += chunk.length;
		if (received > maxBytes) {
			throw new DownloadFailure(`the image is larger than the ${formatMb(maxBytes)} download limit`, false);
		}
		return chunk;
	});
}

export function formatMb(bytes: number): string {
	return `${Math.round((bytes / 1024 / 1024) * 10) / 10} MB`;
}

/** Reads the first bytes of a stream and puts them back, so the format can be checked before storing. */
export async function readHead(stream: ByteStream, size: number): Promise<Buffer> {
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

export function headerText(headers: Record<string, unknown>, name: string): string | undefined {
	const value = headers[name];
	return typeof value === 'string' ? value : undefined;
}

/** Types a file server may send for any file; the bytes then have to show that it is an image. */
const GENERIC_TYPES = new Set(['application/octet-stream', 'binary/octet-stream']);

/** The types whose bytes sniffImageFormat recognises: a body declared as one of them that does not match is broken. */
const RASTER_TYPES = new Set([...Object.values(MIME_TYPES), 'image/jpg']);

/**
 * The MIME type to store, or why the answer is not an image. Only image content types pass (or a
 * generic binary type whose bytes are an image): an error page sent with HTTP 200 must never be
 * stored as the result. The bytes decide the type, and only raster formats the node recognises
 * pass: an SVG may carry a script, and a file named by a type it is not misleads the next node.
 */
export function resolveMimeType(head: Buffer, declared: string | undefined): { mimeType: string } | { problem: string } {
	const type = declared?.split(';')[0].trim().toLowerCase() || undefined;
	if (type && !type.startsWith('image/') && !GENERIC_TYPES.has(type)) {
		return { problem: `the server answered with "${type}", not an image` };
	}
	const sniffed = sniffImageFormat(head);
	if (sniffed) return { mimeType: MIME_TYPES[sniffed] };
	if (type && RASTER_TYPES.has(type)) return { problem: `the body is not a valid image (declared as "${type}")` };
	return { problem: `the body is not a PNG, JPEG, WebP or GIF image (declared as ${type ? `"${type}"` : 'no content type'})` };
}
