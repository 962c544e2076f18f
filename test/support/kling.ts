import { CometApiKlingApi } from '../../credentials/CometApiKlingApi.credentials';
import { KlingOmniImage } from '../../nodes/KlingOmniImage/KlingOmniImage.node';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../nodes/shared/request/retry';
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
		nodeType: new KlingOmniImage(retryPolicy),
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

/** The retry policy the nodes of runKling get: the node's own unless withFastBackoff says otherwise. */
let retryPolicy: RetryPolicy = DEFAULT_RETRY_POLICY;

/**
 * Runs with a shrunk retry backoff (not Retry-After), passed to the node, to keep retry tests fast.
 * The real policy is unit-tested in retry-policy.test.ts; some create tests in faults-create.test.ts also wait the real backoff.
 */
export async function withFastBackoff<T>(run: () => Promise<T>): Promise<T> {
	retryPolicy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 5, maxDelayMs: 20 };
	try {
		return await run();
	} finally {
		retryPolicy = DEFAULT_RETRY_POLICY;
	}
}
