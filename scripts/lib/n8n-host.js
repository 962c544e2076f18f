'use strict';
/*
 * Real n8n for this package: gets a Node.js that the n8n version needs, installs n8n once into a cache
 * folder outside the repository (keyed by n8n version), prepares an n8n user folder with the packed package
 * installed as a community package, and runs n8n commands in it.
 *
 * Shared by `npm start` (scripts/start.js), `scripts/install-n8n.js` and the end-to-end tests (test/e2e/).
 * Plain CommonJS so that it runs on the system Node (20+) and can be required from ts-jest.
 */
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const PACKAGE_NAME = require(path.join(REPO_ROOT, 'package.json')).name;

/**
 * n8n version used by `npm start` and the e2e tests unless N8N_VERSION says otherwise: the n8n-core the
 * unit tests run on (package.json), since n8n and n8n-core are released together under one version.
 */
const DEFAULT_N8N_VERSION = require(path.join(REPO_ROOT, 'package.json')).devDependencies['n8n-core'].replace(/^[^\d]*/, '');
/** The last 1.x line (runs on Node 20). */
const LEGACY_N8N_VERSION = '1.123.81';
/** Node.js used for n8n 2.x when the system Node is older than 24 (npm package node-<platform>-<arch>). */
const NODE24_VERSION = '24.21.0';

function cacheRoot() {
	if (process.env.KLING_N8N_CACHE_DIR) return path.resolve(process.env.KLING_N8N_CACHE_DIR);
	const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
	return path.join(base, PACKAGE_NAME);
}

function n8nVersion() {
	return process.env.N8N_VERSION || DEFAULT_N8N_VERSION;
}

// ---------------------------------------------------------------------------------------------------------
// Progress output

let quiet = false;
function setQuiet(value) {
	quiet = value;
}
function log(message) {
	if (!quiet) process.stderr.write(`[n8n] ${message}\n`);
}
function formatSeconds(ms) {
	return `${Math.round(ms / 1000)} s`;
}

// ---------------------------------------------------------------------------------------------------------
// Running commands

/**
 * Runs a command, resolving with {code, stdout, stderr}. Output is collected; with `echo` it is also streamed
 * to this process's stderr. With `ticker` a line of progress is printed every `tickMs` until it ends.
 */
function run(cmd, args, options = {}) {
	const { cwd, env = process.env, echo = false, ticker, tickMs = 15000, input, allowFailure = false } = options;
	return new Promise((resolve, reject) => {
		const started = Date.now();
		const child = spawn(cmd, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
		let stdout = '';
		let stderr = '';
		child.stdout.on('data', (d) => {
			stdout += d;
			if (echo) process.stderr.write(d);
		});
		child.stderr.on('data', (d) => {
			stderr += d;
			if (echo) process.stderr.write(d);
		});
		if (input !== undefined) child.stdin.end(input);
		else child.stdin.end();
		const timer = ticker ? setInterval(() => log(ticker(Date.now() - started)), tickMs) : undefined;
		child.on('error', (error) => {
			if (timer) clearInterval(timer);
			reject(error);
		});
		child.on('close', (code, signal) => {
			if (timer) clearInterval(timer);
			const result = { code: code ?? 1, signal, stdout, stderr };
			if (code !== 0 && !allowFailure) {
				const tail = (stderr || stdout).split('\n').slice(-40).join('\n');
				reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code ?? signal}):\n${tail}`));
			} else resolve(result);
		});
	});
}

/**
 * Environment whose PATH starts with the given bin folder, so that `npm` and `n8n` run on that Node.
 * Jest's NODE_ENV=test is left out: under it n8n behaves as in its own unit tests (no node loading, ...).
 */
function envWithNode(binDir, extra = {}) {
	const { JEST_WORKER_ID, ...env } = process.env;
	void JEST_WORKER_ID;
	if (env.NODE_ENV === 'test') delete env.NODE_ENV;
	return { ...env, PATH: `${binDir}${path.delimiter}${process.env.PATH || ''}`, ...extra };
}

// ---------------------------------------------------------------------------------------------------------
// A Node.js for the n8n version

function requiredNodeMajor(version) {
	return Number(version.split('.')[0]) >= 2 ? 24 : 20;
}

function withLock(dir, fn) {
	// A simple cross-process lock (mkdir is atomic): two runs installing into the same cache wait for each other.
	const lock = `${dir}.lock`;
	fs.mkdirSync(path.dirname(lock), { recursive: true });
	return (async () => {
		const started = Date.now();
		let warned = false;
		for (;;) {
			try {
				fs.mkdirSync(lock);
				fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
				break;
			} catch (error) {
				if (error.code !== 'EEXIST') throw error;
				let owner = NaN;
				try {
					owner = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8'));
				} catch {}
				let alive = false;
				if (owner) {
					try {
						process.kill(owner, 0);
						alive = true;
					} catch {}
				}
				if (!alive && Date.now() - started > 2000) {
					fs.rmSync(lock, { recursive: true, force: true });
					continue;
				}
				if (!warned) {
					log(`waiting for another install into ${dir} (lock ${lock}) …`);
					warned = true;
				}
				await new Promise((r) => setTimeout(r, 1000));
			}
		}
		try {
			return await fn();
		} finally {
			fs.rmSync(lock, { recursive: true, force: true });
		}
	})();
}

/**
 * Returns {nodeBin, binDir, nodeDir} for a Node.js whose major version is at least what the n8n version needs:
 * the Node running this script when it is new enough, otherwise a copy from the npm registry's
 * node-<platform>-<arch> package, installed once into the cache. `nodeDir` holds Node's C headers (for
 * compiling sqlite3).
 */
async function ensureNode(version = n8nVersion()) {
	const major = requiredNodeMajor(version);
	const systemMajor = Number(process.versions.node.split('.')[0]);
	if (systemMajor >= major) {
		const binDir = path.dirname(process.execPath);
		return { nodeBin: process.execPath, binDir, nodeDir: path.dirname(binDir), version: process.versions.node };
	}
	const pkg = `node-${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`;
	const nodeVersion = process.env.KLING_NODE24_VERSION || NODE24_VERSION;
	const dir = path.join(cacheRoot(), `node-${nodeVersion}`);
	const nodeDir = path.join(dir, 'node_modules', pkg);
	const nodeBin = path.join(nodeDir, 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
	const marker = path.join(dir, '.complete');
	const result = { nodeBin, binDir: path.dirname(nodeBin), nodeDir, version: nodeVersion };
	if (fs.existsSync(marker)) return result;
	return withLock(dir, async () => {
		if (fs.existsSync(marker)) return result;
		log(`Node ${process.versions.node} is older than ${major}: installing Node ${nodeVersion} (npm package ${pkg}) into ${dir} …`);
		const started = Date.now();
		fs.rmSync(dir, { recursive: true, force: true });
		fs.mkdirSync(dir, { recursive: true });
		fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'node-host', private: true }, null, 2));
		await run('npm', ['install', `${pkg}@${nodeVersion}`, '--no-audit', '--no-fund', '--ignore-scripts', '--no-save'], {
			cwd: dir,
			ticker: (ms) => `… still downloading Node ${nodeVersion} (${formatSeconds(ms)})`,
		});
		const check = spawnSync(nodeBin, ['--version'], { encoding: 'utf8' });
		if (check.status !== 0) throw new Error(`${nodeBin} does not run: ${check.stderr || check.error}`);
		fs.writeFileSync(marker, `${new Date().toISOString()}\n`);
		log(`Node ${check.stdout.trim()} ready (${formatSeconds(Date.now() - started)})`);
		return result;
	});
}

// ---------------------------------------------------------------------------------------------------------
// n8n itself

function n8nDir(version = n8nVersion()) {
	return path.join(cacheRoot(), `n8n-${version}`);
}

function countPackages(nodeModules) {
	let count = 0;
	let entries;
	try {
		entries = fs.readdirSync(nodeModules);
	} catch {
		return 0;
	}
	for (const entry of entries) {
		if (entry.startsWith('.')) continue;
		if (entry.startsWith('@')) {
			try {
				count += fs.readdirSync(path.join(nodeModules, entry)).length;
			} catch {}
		} else count++;
	}
	return count;
}

/**
 * Installs n8n@version into the cache once (reused afterwards) and returns
 * {version, dir, bin, node: {nodeBin, binDir, nodeDir}}.
 */
async function ensureN8n(version = n8nVersion()) {
	const node = await ensureNode(version);
	const dir = n8nDir(version);
	const marker = path.join(dir, '.complete');
	const bin = path.join(dir, 'node_modules', 'n8n', 'bin', 'n8n');
	const result = { version, dir, bin, node };
	if (fs.existsSync(marker)) {
		log(`n8n ${version}: using the cached install in ${dir}`);
		return result;
	}
	return withLock(dir, async () => {
		if (fs.existsSync(marker)) return result;
		const env = envWithNode(node.binDir);
		const started = Date.now();
		log(`n8n ${version} is not installed yet: installing it into ${dir}`);
		log(
			`(once per n8n version: about 4 min and ${requiredNodeMajor(version) >= 24 ? '2.9' : '1.8'} GB on disk; later runs reuse it)`,
		);
		fs.rmSync(dir, { recursive: true, force: true });
		fs.mkdirSync(dir, { recursive: true });
		const manifest = { name: 'n8n-host', private: true, dependencies: { n8n: version } };
		if (requiredNodeMajor(version) < 24) {
			// n8n 1.x depends on an xlsx build from a host outside the npm registry; the registry's 0.18.5 works.
			manifest.overrides = { xlsx: '0.18.5' };
		}
		fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
		log(`step 1/3: npm install n8n@${version} --ignore-scripts (with Node ${node.version})`);
		// --ignore-scripts: an optional Kafka client's install script downloads a binary from the web, which
		// fails offline and would roll the whole install back.
		await run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
			cwd: dir,
			env,
			ticker: (ms) => {
				const count = countPackages(path.join(dir, 'node_modules'));
				return `… npm install n8n@${version}: ${formatSeconds(ms)}, ${
					count ? `downloading and unpacking ${count} packages` : 'resolving the dependency tree'
				}`;
			},
		});
		log(`step 1/3 done in ${formatSeconds(Date.now() - started)}`);
		const rebuildStarted = Date.now();
		log(`step 2/3: compiling sqlite3 for Node ${node.version} (n8n's default database; about 1 min)`);
		await run('npm', ['rebuild', 'sqlite3', `--nodedir=${node.nodeDir}`, '--ignore-scripts=false', '--foreground-scripts=false'], {
			cwd: dir,
			env,
			ticker: (ms) => `… compiling sqlite3: ${formatSeconds(ms)}`,
		});
		log(`step 2/3 done in ${formatSeconds(Date.now() - rebuildStarted)}`);
		log('step 3/3: checking that n8n and sqlite3 load');
		await run(node.nodeBin, ['-e', "require('sqlite3'); console.log('sqlite3 ok')"], {
			cwd: path.join(dir, 'node_modules', 'n8n'),
			env,
		});
		const versionCheck = await run(node.nodeBin, [bin, '--version'], { cwd: dir, env });
		fs.writeFileSync(marker, `${versionCheck.stdout.trim()}\n${new Date().toISOString()}\n`);
		log(`n8n ${versionCheck.stdout.trim()} installed in ${formatSeconds(Date.now() - started)}`);
		return result;
	});
}

module.exports = {
	REPO_ROOT,
	PACKAGE_NAME,
	DEFAULT_N8N_VERSION,
	LEGACY_N8N_VERSION,
	NODE24_VERSION,
	cacheRoot,
	n8nVersion,
	n8nDir,
	setQuiet,
	log,
	formatSeconds,
	run,
	envWithNode,
	requiredNodeMajor,
	ensureNode,
	ensureN8n,
};
