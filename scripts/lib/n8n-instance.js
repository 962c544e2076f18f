'use strict';
/*
 * One n8n "instance": a user folder (database, settings, binary data, installed community packages) run by a
 * cached n8n install (see n8n-host.js). Installs the packed package the way n8n installs a community package,
 * imports credentials and workflows, executes workflows headlessly and starts the editor.
 */
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const host = require('./n8n-host');

const { REPO_ROOT, PACKAGE_NAME, run, log } = host;

/** Builds the package (`npm run build`) with the Node running this script. */
async function buildPackage() {
	log('building the package (npm run build)');
	await run('npm', ['run', 'build'], { cwd: REPO_ROOT });
}

/**
 * `npm pack` into destDir and returns the tarball's path. Builds first unless told not to (the project's
 * .npmrc sets ignore-scripts, so npm pack alone would not run `prepack`).
 */
async function packPackage(destDir, { build = true } = {}) {
	if (build) await buildPackage();
	fs.mkdirSync(destDir, { recursive: true });
	const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', destDir], { cwd: REPO_ROOT });
	const [info] = JSON.parse(stdout.slice(stdout.indexOf('[')));
	const tarball = path.join(destDir, info.filename);
	log(`packed ${info.filename} (${info.entryCount} files, ${Math.round(info.size / 1024)} kB)`);
	return tarball;
}

async function freePort() {
	return new Promise((resolve, reject) => {
		const server = net.createServer();
		server.unref();
		server.on('error', reject);
		server.listen(0, '127.0.0.1', () => {
			const { port } = server.address();
			server.close(() => resolve(port));
		});
	});
}

/** A bcrypt hash (for N8N_INSTANCE_OWNER_PASSWORD_HASH), made with the bcryptjs that n8n bundles. */
function bcryptHash(n8n, password) {
	const bcryptPath = require.resolve('bcryptjs', { paths: [path.join(n8n.dir, 'node_modules', 'n8n')] });
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	return require(bcryptPath).hashSync(password, 10);
}

class N8nInstance {
	/**
	 * @param {object} n8n          what host.ensureN8n() returned
	 * @param {object} options
	 * @param {string} options.userFolder   N8N_USER_FOLDER (n8n keeps its data in `<userFolder>/.n8n`)
	 * @param {string} [options.filesDir]   the only folder nodes may read and write files in
	 *                                      (N8N_RESTRICT_FILE_ACCESS_TO); default `<userFolder>/files`
	 * @param {string} [options.encryptionKey]
	 * @param {object} [options.env]        more environment variables for every n8n command
	 */
	constructor(n8n, options) {
		this.n8n = n8n;
		this.userFolder = path.resolve(options.userFolder);
		this.n8nFolder = path.join(this.userFolder, '.n8n');
		this.nodesDir = path.join(this.n8nFolder, 'nodes');
		this.filesDir = path.resolve(options.filesDir || path.join(this.userFolder, 'files'));
		this.encryptionKey = options.encryptionKey || `${PACKAGE_NAME}-local-key`;
		this.extraEnv = options.env || {};
		this.major = Number(n8n.version.split('.')[0]);
		fs.mkdirSync(this.n8nFolder, { recursive: true });
		fs.mkdirSync(this.filesDir, { recursive: true });
	}

	/** Environment for n8n commands: quiet, offline, filesystem binary data, files only in filesDir. */
	env(extra = {}) {
		const env = {
			N8N_USER_FOLDER: this.userFolder,
			N8N_ENCRYPTION_KEY: this.encryptionKey,
			N8N_DIAGNOSTICS_ENABLED: 'false',
			N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
			N8N_TEMPLATES_ENABLED: 'false',
			N8N_PERSONALIZATION_ENABLED: 'false',
			N8N_LICENSE_AUTO_RENEW_ENABLED: 'false',
			N8N_HIRING_BANNER_ENABLED: 'false',
			N8N_DEFAULT_BINARY_DATA_MODE: 'filesystem',
			N8N_RESTRICT_FILE_ACCESS_TO: this.filesDir,
			N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS: 'false',
			N8N_RUNNERS_BROKER_LISTEN_ADDRESS: '127.0.0.1',
			N8N_LISTEN_ADDRESS: '127.0.0.1',
			...(this.major >= 2
				? {
						// Otherwise n8n 2.x contacts n8n's servers for the MCP registry (unknown to 1.x).
						N8N_DISABLED_MODULES: 'mcp-registry',
					}
				: {
						// n8n 1.123's default "vm" expression engine needs isolated-vm, which needs Node 22 or later:
						// on Node 20 only the legacy engine runs.
						...(Number(String(this.n8n.node.version).split('.')[0]) < 22 ? { N8N_EXPRESSION_ENGINE: 'legacy' } : {}),
					}),
			...this.extraEnv,
			...extra,
		};
		return host.envWithNode(this.n8n.node.binDir, env);
	}

	/** Runs `n8n <args>`; resolves with {code, signal, stdout, stderr} (rejects on failure unless allowFailure). */
	async command(args, options = {}) {
		const env = this.env({
			// Each command gets its own task-runner broker port, so that commands (and a running editor) can overlap.
			N8N_RUNNERS_BROKER_PORT: String(await freePort()),
			...(options.env || {}),
		});
		return run(this.n8n.node.nodeBin, [this.n8n.bin, ...args], { ...options, env, cwd: options.cwd || this.userFolder });
	}

	/**
	 * Installs the packed package from a tarball the way n8n itself installs a community package: unpacked to
	 * `<userFolder>/.n8n/nodes/node_modules/<name>`, dev/peer/optional dependencies removed from its
	 * package.json, its own dependencies installed inside it, and listed in `nodes/package.json`.
	 */
	async installPackage(tarball) {
		const target = path.join(this.nodesDir, 'node_modules', PACKAGE_NAME);
		fs.rmSync(target, { recursive: true, force: true });
		fs.mkdirSync(target, { recursive: true });
		await run('tar', ['-xzf', path.resolve(tarball), '-C', target, '--strip-components=1']);
		const manifestPath = path.join(target, 'package.json');
		const { devDependencies, peerDependencies, optionalDependencies, ...manifest } = JSON.parse(
			fs.readFileSync(manifestPath, 'utf8'),
		);
		void devDependencies;
		void peerDependencies;
		void optionalDependencies;
		fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
		if (manifest.dependencies && Object.keys(manifest.dependencies).length > 0) {
			await run(
				'npm',
				[
					'install',
					'--audit=false',
					'--fund=false',
					'--bin-links=false',
					'--install-strategy=shallow',
					'--ignore-scripts=true',
					'--package-lock=false',
				],
				{ cwd: target },
			);
		}
		const nodesManifestPath = path.join(this.nodesDir, 'package.json');
		let nodesManifest = { name: 'installed-nodes', private: true, dependencies: {} };
		try {
			nodesManifest = JSON.parse(fs.readFileSync(nodesManifestPath, 'utf8'));
		} catch {}
		nodesManifest.dependencies = { ...(nodesManifest.dependencies || {}), [PACKAGE_NAME]: manifest.version };
		fs.writeFileSync(nodesManifestPath, JSON.stringify(nodesManifest, null, 2));
		return { dir: target, version: manifest.version };
	}

	/** Imports credentials given with plain data: [{id, name, type, data}]; n8n encrypts them on import. */
	async importCredentials(credentials) {
		const file = this.tempFile('credentials', credentials);
		try {
			await this.command(['import:credentials', `--input=${file}`]);
		} finally {
			fs.rmSync(file, { force: true });
		}
	}

	/** Imports workflow objects (each with its `id`; an existing workflow with that id is replaced). */
	async importWorkflows(workflows) {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'n8n-import-'));
		try {
			workflows.forEach((workflow, i) =>
				fs.writeFileSync(path.join(dir, `${String(i).padStart(3, '0')}.json`), JSON.stringify(workflow)),
			);
			await this.command(['import:workflow', '--separate', `--input=${dir}`]);
		} finally {
			fs.rmSync(dir, { recursive: true, force: true });
		}
	}

	tempFile(prefix, content) {
		const file = path.join(os.tmpdir(), `${prefix}-${process.pid}-${crypto.randomUUID()}.json`);
		fs.writeFileSync(file, JSON.stringify(content), { mode: 0o600 });
		return file;
	}

	/**
	 * `n8n execute --id <id> --rawOutput`. Resolves with
	 * {ok, code, signal, run, error, stdout, stderr, durationMs}: `run` is the execution n8n printed (for a
	 * failed execution, the one it logs with "Execution was NOT successful"), `error` its
	 * data.resultData.error.
	 */
	async execute(workflowId, options = {}) {
		const started = Date.now();
		const result = await this.command(['execute', `--id=${workflowId}`, '--rawOutput'], {
			...options,
			allowFailure: true,
		});
		const runData = parseExecutionOutput(result.stdout);
		const error = runData?.data?.resultData?.error;
		return {
			ok: result.code === 0 && !!runData && !error,
			code: result.code,
			signal: result.signal,
			run: runData,
			error,
			stdout: result.stdout,
			stderr: result.stderr,
			durationMs: Date.now() - started,
		};
	}

	/**
	 * Starts `n8n start` (the editor and API) in its own process group. Resolves once it answers on
	 * /healthz/readiness with {url, child, stop()}.
	 */
	async start({ port, ownerEmail, ownerPassword, ownerFirstName = 'Demo', ownerLastName = 'Owner', echo = true, env = {} }) {
		const runnerPort = await freePort();
		const ownerEnv = ownerEmail
			? {
					N8N_INSTANCE_OWNER_MANAGED_BY_ENV: 'true',
					N8N_INSTANCE_OWNER_EMAIL: ownerEmail,
					N8N_INSTANCE_OWNER_FIRST_NAME: ownerFirstName,
					N8N_INSTANCE_OWNER_LAST_NAME: ownerLastName,
					N8N_INSTANCE_OWNER_PASSWORD_HASH: bcryptHash(this.n8n, ownerPassword),
				}
			: {};
		const childEnv = this.env({
			N8N_PORT: String(port),
			N8N_HOST: 'localhost',
			N8N_PROTOCOL: 'http',
			N8N_EDITOR_BASE_URL: `http://localhost:${port}/`,
			WEBHOOK_URL: `http://localhost:${port}/`,
			N8N_RUNNERS_BROKER_PORT: String(runnerPort),
			N8N_SECURE_COOKIE: 'false',
			...ownerEnv,
			...env,
		});
		const child = spawn(this.n8n.node.nodeBin, [this.n8n.bin, 'start'], {
			cwd: this.userFolder,
			env: childEnv,
			detached: true, // own process group: stop() ends n8n and its task runners together
			stdio: ['ignore', 'pipe', 'pipe'],
		});
		let output = '';
		const onData = (d) => {
			output += d;
			if (output.length > 200000) output = output.slice(-100000);
			if (echo) process.stderr.write(d);
		};
		child.stdout.on('data', onData);
		child.stderr.on('data', onData);
		const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
		const url = `http://localhost:${port}`;
		const stop = () => stopProcessGroup(child, exited);
		const deadline = Date.now() + 120000;
		for (;;) {
			const state = await Promise.race([exited.then((e) => ({ exited: e })), delay(500).then(() => null)]);
			if (state?.exited) {
				throw new Error(`n8n start exited (${state.exited.code ?? state.exited.signal}) before it was ready:\n${output.slice(-4000)}`);
			}
			try {
				const res = await fetch(`http://127.0.0.1:${port}/healthz/readiness`);
				if (res.ok) break;
			} catch {}
			if (Date.now() > deadline) {
				await stop();
				throw new Error(`n8n did not get ready on port ${port} within 120 s:\n${output.slice(-4000)}`);
			}
		}
		return { url, child, stop, exited, output: () => output };
	}
}

function delay(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

/** SIGTERM to a detached child's process group, SIGKILL after a grace period. */
async function stopProcessGroup(child, exited, graceMs = 10000) {
	if (child.exitCode !== null || child.signalCode !== null) return;
	const signalGroup = (signal) => {
		try {
			process.kill(-child.pid, signal);
		} catch {
			try {
				child.kill(signal);
			} catch {}
		}
	};
	signalGroup('SIGTERM');
	const done = await Promise.race([exited.then(() => true), delay(graceMs).then(() => false)]);
	if (!done) {
		signalGroup('SIGKILL');
		await exited;
	}
	// Task runners and other members of the group may outlive n8n itself.
	try {
		process.kill(-child.pid, 'SIGKILL');
	} catch {}
}

/**
 * Pulls the execution JSON out of `n8n execute --rawOutput` output: log lines come first, then a JSON
 * document that starts at a line that is exactly `{` (also for a failed execution, which n8n logs).
 */
function parseExecutionOutput(stdout) {
	const lines = stdout.split('\n');
	for (let start = 0; start < lines.length; start++) {
		if (lines[start] !== '{') continue;
		for (let end = start + 1; end < lines.length; end++) {
			if (lines[end] !== '}') continue;
			try {
				const parsed = JSON.parse(lines.slice(start, end + 1).join('\n'));
				if (parsed && typeof parsed === 'object' && parsed.data && parsed.data.resultData) return parsed;
			} catch {}
		}
	}
	return undefined;
}

/** The items a node output in a run: [{json, binary?, pairedItem?, error?}] ([] when it did not run). */
function nodeOutput(runResult, nodeName, { output = 0, run: runIndex = 0 } = {}) {
	const task = runResult?.data?.resultData?.runData?.[nodeName]?.[runIndex];
	if (!task) return [];
	return task.data?.main?.[output] ?? [];
}

/** A node's task data in a run (executionStatus, error, ...). */
function nodeTask(runResult, nodeName, runIndex = 0) {
	return runResult?.data?.resultData?.runData?.[nodeName]?.[runIndex];
}

module.exports = {
	N8nInstance,
	buildPackage,
	packPackage,
	freePort,
	parseExecutionOutput,
	nodeOutput,
	nodeTask,
	stopProcessGroup,
};
