/**
 * The simulator's API as a client other than the node sees it: plain HTTP requests for the simulator's own
 * tests, and tasks created straight at it so a node test can start from tasks that already exist.
 */
import * as http from 'node:http';

import type { Simulator, TaskPlan } from '../../simulator';

/** Where a task is created; a task is queried at this path followed by its id. */
export const CREATE_PATH = '/kling/v1/images/omni-image';

/** Bearer key (the simulator's own unless given) and a JSON body type. */
export function authHeaders(sim: Simulator, key = sim.apiKey): Record<string, string> {
	return { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
}

/** POSTs a create request; the answer as status, parsed JSON and headers. */
export async function createTask(sim: Simulator, body: unknown, key = sim.apiKey) {
	const res = await fetch(sim.apiUrl + CREATE_PATH, {
		method: 'POST',
		headers: authHeaders(sim, key),
		body: JSON.stringify(body),
	});
	return { status: res.status, json: (await res.json()) as any, headers: res.headers };
}

/** GETs a task (with the simulator's key unless other headers are given); the answer as status and parsed JSON. */
export async function queryTask(sim: Simulator, taskId: string, headers: Record<string, string> = { authorization: `Bearer ${sim.apiKey}` }) {
	const res = await fetch(`${sim.apiUrl}${CREATE_PATH}/${taskId}`, { headers });
	return { status: res.status, json: (await res.json()) as any };
}

/**
 * The task as the query answers it under `data`: the body a provider posts as its callback. The
 * query is taken off the simulator's request log, so that counts show only the node's requests.
 */
export async function callbackBodyOf(sim: Simulator, taskId: string): Promise<Record<string, unknown>> {
	const { json } = await queryTask(sim, taskId);
	sim.requests.pop();
	return json.data as Record<string, unknown>;
}

/** GETs an image URL: status, content type and the bytes. */
export async function download(url: string) {
	const res = await fetch(url);
	return { status: res.status, type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
}

export interface RawResponse {
	status?: number;
	headers: http.IncomingHttpHeaders;
	body: Buffer;
	/** true when the body arrived in full (the response ended normally). */
	complete: boolean;
	error?: string;
}

/** Plain http client (no keep-alive) that reports partial bodies and socket errors instead of throwing. */
export function raw(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
	return new Promise<RawResponse>((resolve) => {
		const out: RawResponse = { headers: {}, body: Buffer.alloc(0), complete: false };
		const chunks: Buffer[] = [];
		const finish = (error?: Error) => {
			out.body = Buffer.concat(chunks);
			if (error && !out.error) out.error = error.message;
			resolve(out);
		};
		const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
			out.status = res.statusCode;
			out.headers = res.headers;
			res.on('data', (c: Buffer) => chunks.push(c));
			res.on('end', () => {
				out.complete = true;
				finish();
			});
			res.on('error', finish);
			res.on('close', () => finish());
		});
		req.on('error', finish);
		req.end(opts.body);
	});
}

/** Prompts of tasks created straight at the simulator: SEED ones finish at once, SEED_FAIL ones fail at once. */
export const SEED = 'seed: finishes at once';
export const SEED_FAIL = 'seed: fails at once';
export const SEED_FAIL_REASON = 'Prompt violates content policy';

/** A simulator `taskPlan` that finishes (or fails) seeded tasks at once and leaves every other task to the options. */
export function seededTaskPlan(body: { prompt?: string }): TaskPlan | undefined {
	if (body.prompt === SEED) return { durationMs: 0 };
	if (body.prompt === SEED_FAIL) return { durationMs: 0, outcome: 'failed', failReason: SEED_FAIL_REASON };
	return undefined;
}

/** Creates one task a prompt straight at the simulator, then clears its request log so the test counts from 0. */
export async function seedTasks(sim: Simulator, prompts: string[]): Promise<string[]> {
	const ids: string[] = [];
	for (const prompt of prompts) {
		const { json } = await createTask(sim, { prompt });
		ids.push(json.data.task_id);
	}
	sim.requests.length = 0;
	return ids;
}
