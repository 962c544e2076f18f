import type { Simulator } from '../../simulator';

/**
 * Sends the callbacks nobody should act on: forged ones at the trigger's URL without a task's token
 * (for a task the API does not know, and a "finished" one for a real task still running: both 403
 * before any query), and four malformed bodies (4xx). That none started an execution is for the
 * caller to check.
 */
export async function expectForgedAndMalformedRefused(sim: Simulator, triggerUrl: string, unfinishedTaskId: string): Promise<void> {
	const unknown = await sim.sendForgedCallback(triggerUrl);
	expect(unknown.responseStatus).toBe(403);
	const early = await sim.sendForgedCallback(triggerUrl, { taskId: unfinishedTaskId, wrapped: true });
	expect(early.responseStatus).toBe(403);
	for (const kind of ['notJson', 'noTaskId', 'empty', 'array'] as const) {
		const record = await sim.sendMalformedCallback(triggerUrl, kind);
		expect([kind, record.responseStatus! >= 400 && record.responseStatus! < 500]).toEqual([kind, true]);
	}
}

/** POSTs JSON (a callback, a webhook start) and returns the status with the answer, parsed when it is JSON. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
	const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
	const text = await res.text();
	let parsed: unknown = text;
	try {
		parsed = JSON.parse(text);
	} catch {}
	return { status: res.status, body: parsed };
}
