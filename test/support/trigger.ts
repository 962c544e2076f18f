/** Test helpers for the callback trigger: a loopback URL in front of its webhook method. */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

import type { RecheckPolicy } from '../../nodes/KlingOmniImageTrigger/handleCallback';
import { DEFAULT_RETRY_POLICY } from '../../nodes/shared/request/retry';
import type { WebhookTrigger } from '../harness/webhook';

export const FAST_RETRY = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 5, maxDelayMs: 20 };
/** Re-checks of a lagging query, short for tests: their count is what is asserted. */
export const FAST_RECHECK: RecheckPolicy = { delaysMs: [10, 20, 40] };
/** The trigger's production path on an address nothing listens on: tasks get its token, callbacks go nowhere. */
export const UNREACHABLE_TRIGGER_URL = 'http://127.0.0.1:9/webhook/5f1c0a8e-6b1d-4f57-9a43-1c2b3d4e5f60/kling';

/**
 * A loopback URL that hands each POST to the trigger the way n8n does: JSON bodies parsed first
 * (invalid JSON answered 422 before the node sees it), then the node's own answer.
 */
export async function serve(trigger: WebhookTrigger): Promise<{ url: string; close(): Promise<void> }> {
	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on('data', (chunk: Buffer) => chunks.push(chunk));
		req.on('error', () => res.destroy());
		req.on('end', () => {
			void (async () => {
				const rawBody = Buffer.concat(chunks);
				const headers = Object.fromEntries(
					Object.entries(req.headers).map(([key, value]) => [key, String(value)]),
				);
				let body: unknown = {};
				if ((headers['content-type'] ?? '').startsWith('application/json') && rawBody.length) {
					try {
						body = JSON.parse(rawBody.toString('utf8'));
					} catch {
						res.writeHead(422, { 'content-type': 'application/json' });
						res.end(JSON.stringify({ message: 'Failed to parse request body' }));
						return;
					}
				}
				const reply = (status: number, answer: unknown) => {
					if (res.headersSent) return;
					res.writeHead(status, { 'content-type': 'application/json' });
					res.end(JSON.stringify(answer));
				};
				// Answered when the node answers, as n8n does: the execution (execute()) runs after that.
				const result = await trigger.call({ body, rawBody, headers, url: req.url, onAnswer: reply });
				reply(result.status ?? 500, result.body ?? { message: 'no answer' });
			})();
		});
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}${new URL(trigger.productionUrl()).pathname}`,
		close: async () => await new Promise<void>((resolve) => server.close(() => resolve())),
	};
}

