import { pause } from './pause';

/** What the timeout needs of a streamed answer: a body it can cut off. */
interface Streamed {
	body: { destroy(error?: Error): unknown };
}

/** Read as a timeout by the retry decisions (network.ts), like the HTTP client's own. */
function timeoutError(timeoutMs: number): Error {
	return Object.assign(new Error(`no complete answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
}

/**
 * Sends a request and reads its streamed body within `timeoutMs`, from sending to the last byte.
 * The HTTP client's own timeout only fires while nothing arrives, so a server that trickles a byte
 * now and then would hold the run for ever; once `timeoutMs` has passed the body is cut off instead.
 */
export async function withinTimeout<R extends Streamed, T>(
	timeoutMs: number,
	send: () => Promise<R>,
	read: (response: R) => Promise<T>,
): Promise<T> {
	let response: R | undefined;
	let expired = false;
	const timer = new AbortController();
	const timedOut = pause(timeoutMs, timer.signal).then(() => {
		expired = true;
		response?.body.destroy(timeoutError(timeoutMs));
		throw timeoutError(timeoutMs);
	});
	const work = (async () => {
		response = await send();
		// An answer that arrives after that is dropped, not read.
		if (expired) response.body.destroy(timeoutError(timeoutMs));
		return await read(response);
	})();
	try {
		return await Promise.race([work, timedOut]);
	} finally {
		timer.abort();
		// The loser of the race may still reject; nobody waits for it any more.
		work.catch(() => undefined);
		timedOut.catch(() => undefined);
	}
}

/** Reads a whole streamed body, keeping at most `maxBytes` (an endless body is cut off there). */
export async function readBody(body: AsyncIterable<unknown> & Streamed['body'], maxBytes: number): Promise<Buffer> {
	const chunks: Buffer[] = [];
	let length = 0;
	for await (const chunk of body) {
		const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
		chunks.push(bytes);
		length += bytes.length;
		if (length > maxBytes) {
			body.destroy();
			break;
		}
	}
	return Buffer.concat(chunks).subarray(0, maxBytes);
}
