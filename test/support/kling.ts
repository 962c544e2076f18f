import { CometApiKlingApi } from '../../credentials/CometApiKlingApi.credentials';
import { RETRY } from '../../nodes/KlingOmniImage/transport/backoff';
import { KlingOmniImage } from '../../nodes/KlingOmniImage/KlingOmniImage.node';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../simulator';
import { runNode, type RunNodeOptions, type RunNodeResult } from '../harness';

/** A key shaped like a real one, so tests can search every output for it. */
export const API_KEY = 'sk-kling-test-9f8e7d6c5b4a39281706';

/** Fast polling for tests: the node's minimum interval, tasks that finish well within it. */
export const FAST = { pollInterval: 1, maxWaitTime: 30 };

export async function startSim(options: SimulatorOptions = {}): Promise<Simulator> {
	return await startSimulator({ apiKey: API_KEY, taskDurationMs: 300, ...options });
}

export async function runKling(
	sim: Simulator,
	parameters: RunNodeOptions['parameters'],
	options: Partial<RunNodeOptions> = {},
): Promise<RunNodeResult> {
	return await runNode({
		nodeType: new KlingOmniImage(),
		credentialType: new CometApiKlingApi(),
		credentials: { apiKey: API_KEY, baseUrl: sim.apiUrl },
		parameters,
		...options,
	});
}

/** Create Omni Image parameters with the given overrides; waits by default like the node. */
export function createParams(overrides: RunNodeOptions['parameters'] = {}): RunNodeOptions['parameters'] {
	return {
		operation: 'createOmniImage',
		prompt: 'A lighthouse at dawn',
		options: { ...FAST },
		...overrides,
	};
}

export function errorMessage(error: unknown): string {
	return error instanceof Error ? error.message : String(error);
}

/** Every string n8n could show or store for a run: output JSON, error message, description, cause. */
export function everythingVisible(result: RunNodeResult): string {
	const error = result.error as (Error & { description?: string; cause?: unknown; context?: unknown }) | undefined;
	return JSON.stringify({
		output: result.output,
		error: error && {
			message: error.message,
			description: error.description,
			stack: error.stack,
			context: error.context,
			json: JSON.parse(JSON.stringify(error, Object.getOwnPropertyNames(error).filter((k) => k !== 'cause'))),
		},
	});
}

/**
 * Shrinks the retry backoff (not Retry-After) to keep retry tests fast. The real constants are
 * unit-tested in faults.test.ts, where some create tests also wait the real backoff.
 */
export async function withFastBackoff<T>(run: () => Promise<T>): Promise<T> {
	const saved = { ...RETRY };
	Object.assign(RETRY, { baseDelayMs: 5, maxDelayMs: 20 });
	try {
		return await run();
	} finally {
		Object.assign(RETRY, saved);
	}
}
