/**
 * n8n's BinaryDataService, one instance per binary data mode.
 *
 * n8n-core's binary helpers (`prepareBinaryData`, `getBinaryDataBuffer`,
 * `getBinaryStream`, ...) all do `Container.get(BinaryDataService)`, and
 * `convertBinaryData` reads `Container.get(BinaryDataConfig).mode`. So for a run
 * in a given mode the harness puts that mode's service + config into the
 * Container for the duration of the run (see `withBinaryMode`).
 *
 * Both services are initialised with the same `localStoragePath` (a temp folder);
 * `BinaryDataService.init()` always sets up the filesystem manager, so either
 * instance can read back any `filesystem-v2:...` id, and 'default' mode keeps
 * the bytes base64-encoded in `IBinaryData.data`.
 */
import './env';

import { join } from 'node:path';
import type { Readable } from 'node:stream';

import { BinaryDataConfig, BinaryDataService, ErrorReporter } from 'n8n-core';
import type { IBinaryData } from 'n8n-workflow';
import { fileTypeFromMimeType } from 'n8n-workflow';

import { harnessTempRoot } from './env';
import { Container, Logger } from './n8n-internals';

export type HarnessBinaryMode = 'default' | 'filesystem';

/** Default for `runNode({ binaryMode })` and `makeBinary`: n8n 2.x's own default. */
export const DEFAULT_BINARY_MODE: HarnessBinaryMode = 'filesystem';

/** Workflow id used by the harness (binary data is stored under it). */
export const HARNESS_WORKFLOW_ID = 'harness-workflow';

interface ModeSetup {
	config: BinaryDataConfig;
	service: BinaryDataService;
}

const setups = new Map<HarnessBinaryMode, Promise<ModeSetup>>();

export function binaryStoragePath(): string {
	return join(harnessTempRoot(), 'binary-data');
}

async function createSetup(mode: HarnessBinaryMode): Promise<ModeSetup> {
	// The env-derived config (signing secret etc.), cloned per mode.
	const base = Container.get(BinaryDataConfig);
	const config = Object.assign(
		Object.create(Object.getPrototypeOf(base) as object) as BinaryDataConfig,
		base,
		{ mode, localStoragePath: binaryStoragePath() },
	);
	const service = new BinaryDataService(
		config,
		Container.get(ErrorReporter),
		Container.get(Logger),
	);
	await service.init();
	return { config, service };
}

export async function getBinarySetup(mode: HarnessBinaryMode): Promise<ModeSetup> {
	if (mode !== 'default' && mode !== 'filesystem') {
		throw new Error(`Harness: unsupported binary data mode "${String(mode)}"`);
	}
	let setup = setups.get(mode);
	if (!setup) {
		setup = createSetup(mode);
		setups.set(mode, setup);
		setup.catch(() => setups.delete(mode));
	}
	return await setup;
}

// ---------------------------------------------------------------------------
// Mode switching. Runs in the same mode may overlap; a run in another mode waits
// until the current mode's runs are done (the Container holds one service).
// ---------------------------------------------------------------------------

let activeMode: HarnessBinaryMode | undefined;
let activeRuns = 0;
let idle: Promise<void> = Promise.resolve();
let signalIdle: () => void = () => {};

export async function withBinaryMode<T>(
	mode: HarnessBinaryMode,
	fn: () => Promise<T>,
): Promise<T> {
	const { config, service } = await getBinarySetup(mode);
	while (activeRuns > 0 && activeMode !== mode) {
		await idle;
	}
	if (activeRuns === 0) {
		idle = new Promise<void>((resolve) => (signalIdle = resolve));
	}
	activeMode = mode;
	activeRuns++;
	Container.set(BinaryDataConfig, config);
	Container.set(BinaryDataService, service);
	try {
		return await fn();
	} finally {
		activeRuns--;
		if (activeRuns === 0) signalIdle();
	}
}

// ---------------------------------------------------------------------------
// Public helpers
// ---------------------------------------------------------------------------

/** Reads the bytes of a binary (either mode) back through n8n's BinaryDataService. */
export async function binaryToBuffer(binary: IBinaryData): Promise<Buffer> {
	const { service } = await getBinarySetup('filesystem');
	return await service.getAsBuffer(binary);
}

let inputCounter = 0;

export interface MakeBinaryOptions {
	/** Where to store the bytes. Default: 'filesystem' (n8n 2.x default). */
	mode?: HarnessBinaryMode;
}

/**
 * Stores bytes through n8n's BinaryDataService and returns the IBinaryData to put
 * on an input item (`{ json: {}, binary: { data: await makeBinary(...) } }`).
 * Mirrors what `prepareBinaryData(buffer, fileName, mimeType)` produces.
 */
export async function makeBinary(
	data: Buffer | Readable,
	fileName: string,
	mimeType: string,
	options: MakeBinaryOptions = {},
): Promise<IBinaryData> {
	const { service } = await getBinarySetup(options.mode ?? DEFAULT_BINARY_MODE);
	const dot = fileName.lastIndexOf('.');
	const binary: IBinaryData = {
		mimeType,
		fileType: fileTypeFromMimeType(mimeType),
		fileExtension: dot > 0 ? fileName.slice(dot + 1) : undefined,
		fileName,
		data: '',
	};
	const location = {
		type: 'execution' as const,
		workflowId: HARNESS_WORKFLOW_ID,
		executionId: `harness-input-${++inputCounter}`,
	};
	return await service.store(location, data, binary);
}
