/**
 * Process-environment bootstrap for the harness.
 *
 * Must be evaluated before anything asks the `@n8n/di` Container for an n8n
 * service: `@n8n/config` classes (InstanceSettingsConfig, GlobalConfig, ...)
 * read `process.env` once, when the Container first constructs them.
 *
 * - `N8N_USER_FOLDER` is pointed at a fresh temp folder so n8n-core's
 *   `InstanceSettings` writes its `.n8n/config` (encryption key) there and
 *   never into the developer's real `~/.n8n`.
 * - `N8N_LOG_LEVEL` defaults to `error` (n8n's default is `info`) to keep test
 *   output quiet. Set it yourself (e.g. `N8N_LOG_LEVEL=debug npx jest`) to see
 *   n8n's logs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let tempRoot: string | undefined;

/** Root temp folder of this test file's harness (created on first call). */
export function harnessTempRoot(): string {
	if (tempRoot === undefined) {
		tempRoot = mkdtempSync(join(tmpdir(), 'n8n-harness-'));
	}
	return tempRoot;
}

export function applyHarnessEnv(): void {
	process.env.N8N_USER_FOLDER = join(harnessTempRoot(), 'user');
	// Binary data must land in our temp folder, whatever the developer's shell says.
	delete process.env.N8N_BINARY_DATA_STORAGE_PATH;
	delete process.env.N8N_STORAGE_PATH;
	process.env.N8N_LOG_LEVEL ??= 'error';
}

/**
 * Deletes the temp folder (binary data, instance settings). Safe to call twice.
 * The path is kept: n8n's services already captured it, and would recreate it if
 * used again afterwards.
 */
export function removeHarnessTempRoot(): void {
	if (tempRoot !== undefined) {
		rmSync(tempRoot, { recursive: true, force: true });
	}
}

applyHarnessEnv();
