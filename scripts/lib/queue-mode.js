'use strict';
/*
 * n8n's queue mode on one machine: Redis (Debian's redis-server, run as a plain process), a throwaway
 * Postgres cluster (Debian's postgresql, initdb + pg_ctl as an unprivileged user), one n8n main and n8n
 * worker processes, all on loopback and free ports, sharing one user folder (so the packed package is
 * installed once) and one database.
 *
 * Shared by `npm start -- --queue` (scripts/start.js) and the queue-mode tests (test/queue/).
 *
 *   const cluster = new QueueCluster(n8n, { workDir });
 *   await cluster.startServices();            // Redis + Postgres (installs them with apt when missing)
 *   const instance = cluster.instance;        // a QueueN8nInstance: install the package, import, publish
 *   await cluster.startN8n({ port, ownerEmail, ownerPassword });   // the main first, then the workers
 *   ...
 *   await cluster.stop();                     // everything it started, also after a failed start
 *
 * Settings that matter (see README "Scaling: queue mode"): EXECUTIONS_MODE=queue, binary data in the
 * database (N8N_DEFAULT_BINARY_DATA_MODE=database, n8n's own default in queue mode), per process its own
 * N8N_RUNNERS_BROKER_PORT and N8N_EVENTBUS_LOGWRITER_LOGBASENAME, workers ready when their health server
 * (QUEUE_HEALTH_CHECK_PORT) answers /healthz/readiness.
 */
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const host = require('./n8n-host');
const { N8nInstance, freePort, stopProcessGroup } = require('./n8n-instance');

const { log, run } = host;

const DEFAULT_WORKERS = 2;
const DEFAULT_CONCURRENCY = 5;
const POSTGRES_USER = 'postgres';
const POSTGRES_DATABASE = 'n8n';
const POSTGRES_PASSWORD = 'n8n-queue';

function delay(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

function isRoot() {
	return typeof process.getuid === 'function' && process.getuid() === 0;
}

// ---------------------------------------------------------------------------------------------------------
// Redis and Postgres binaries (installed with apt when missing)

function which(command) {
	for (const dir of (process.env.PATH || '').split(path.delimiter)) {
		const candidate = path.join(dir, command);
		try {
			fs.accessSync(candidate, fs.constants.X_OK);
			return candidate;
		} catch {}
	}
	for (const dir of ['/usr/bin', '/usr/sbin', '/usr/local/bin']) {
		const candidate = path.join(dir, command);
		if (fs.existsSync(candidate)) return candidate;
	}
	return undefined;
}

/** The newest /usr/lib/postgresql/<major>/bin that has initdb and pg_ctl (or one given by PG_BIN_DIR). */
function findPostgresBinDir() {
	if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
	const root = '/usr/lib/postgresql';
	let majors = [];
	try {
		majors = fs.readdirSync(root).filter((d) => /^\d+$/.test(d));
	} catch {}
	majors.sort((a, b) => Number(b) - Number(a));
	for (const major of majors) {
		const bin = path.join(root, major, 'bin');
		if (fs.existsSync(path.join(bin, 'initdb')) && fs.existsSync(path.join(bin, 'pg_ctl'))) return bin;
	}
	const initdb = which('initdb');
	return initdb && fs.existsSync(path.join(path.dirname(initdb), 'pg_ctl')) ? path.dirname(initdb) : undefined;
}

function findServices() {
	return { redisServer: which('redis-server'), pgBinDir: findPostgresBinDir() };
}

/**
 * Returns {redisServer, pgBinDir, postgresVersion, redisVersion}; installs Debian's redis-server and
 * postgresql packages with apt-get first when they are missing (as root, or through `sudo -n`).
 */
async function ensureQueueServices() {
	let found = findServices();
	const missing = [!found.redisServer && 'redis-server', !found.pgBinDir && 'postgresql'].filter(Boolean);
	if (missing.length > 0) {
		const sudo = isRoot() ? [] : ['sudo', '-n'];
		const apt = async (args, options = {}) => {
			const [cmd, ...rest] = [...sudo, 'apt-get', ...args];
			await run(cmd, rest, {
				env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
				ticker: (ms) => `… apt-get ${args[0]}: ${host.formatSeconds(ms)}`,
				...options,
			});
		};
		const started = Date.now();
		log(`queue mode needs ${missing.join(' and ')}: installing with apt-get (once per machine, about a minute)`);
		await apt(['update', '-q']);
		await apt(['install', '-y', '-q', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=600', ...missing]);
		log(`installed ${missing.join(' and ')} in ${host.formatSeconds(Date.now() - started)}`);
		found = findServices();
		if (!found.redisServer) throw new Error('redis-server is still missing after apt-get install redis-server');
		if (!found.pgBinDir) throw new Error('initdb/pg_ctl are still missing after apt-get install postgresql');
	}
	const redisVersion = /v=(\S+)/.exec(spawnSync(found.redisServer, ['--version'], { encoding: 'utf8' }).stdout || '')?.[1];
	const postgresVersion = (spawnSync(path.join(found.pgBinDir, 'postgres'), ['--version'], { encoding: 'utf8' }).stdout || '')
		.trim()
		.replace(/^postgres \(PostgreSQL\) /, '');
	return { ...found, redisVersion, postgresVersion };
}

// ---------------------------------------------------------------------------------------------------------
// Redis

function redisPing(port) {
	return new Promise((resolve) => {
		const socket = net.connect(port, '127.0.0.1');
		let answer = '';
		socket.setTimeout(1000, () => socket.destroy());
		socket.once('connect', () => socket.write('PING\r\n'));
		socket.on('data', (d) => {
			answer += d;
			if (answer.includes('\r\n')) socket.end();
		});
		socket.once('close', () => resolve(answer.startsWith('+PONG')));
		socket.once('error', () => resolve(false));
	});
}

/** Starts `redis-server` as a plain child process (no service, no persistence); resolves with {port, stop()}. */
async function startRedis({ redisServer, dir, port }) {
	port = port || (await freePort());
	fs.mkdirSync(dir, { recursive: true });
	const logFile = path.join(dir, 'redis.log');
	const child = spawn(
		redisServer,
		[
			'--port', String(port),
			'--bind', '127.0.0.1',
			'--dir', dir,
			'--save', '',
			'--appendonly', 'no',
			'--daemonize', 'no',
			'--logfile', logFile,
			'--pidfile', path.join(dir, 'redis.pid'),
		],
		{ detached: true, stdio: 'ignore' },
	);
	const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
	const stop = () => stopProcessGroup(child, exited, 5000);
	const deadline = Date.now() + 20000;
	while (!(await redisPing(port))) {
		if (child.exitCode !== null || child.signalCode !== null) {
			throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode}): ${readTail(logFile)}`);
		}
		if (Date.now() > deadline) {
			await stop();
			throw new Error(`redis-server did not answer on port ${port} within 20 s: ${readTail(logFile)}`);
		}
		await delay(100);
	}
	return { port, pid: child.pid, child, logFile, stop };
}

// ---------------------------------------------------------------------------------------------------------
// Postgres

function readTail(file, chars = 3000) {
	try {
		return fs.readFileSync(file, 'utf8').slice(-chars);
	} catch {
		return '';
	}
}

/** uid/gid of the unprivileged user Postgres runs as when this process is root. */
function postgresOsUser() {
	if (!isRoot()) return undefined;
	const name = process.env.KLING_PG_OS_USER || 'postgres';
	const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
	const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
	if (uid.status !== 0 || gid.status !== 0) {
		throw new Error(`Postgres refuses to run as root and there is no "${name}" user (set KLING_PG_OS_USER)`);
	}
	return { name, uid: Number(uid.stdout), gid: Number(gid.stdout) };
}

/**
 * A throwaway cluster: `initdb` into a fresh folder, `pg_ctl start` on 127.0.0.1:port (socket in the
 * folder), a database for n8n. Runs as the `postgres` user when this process is root. Resolves with
 * {port, host, database, user, password, dataDir, stop()}.
 */
async function startPostgres({ pgBinDir, port, onDataDir }) {
	port = port || (await freePort());
	const osUser = postgresOsUser();
	// Its own folder under the system temp dir: the parent folders must be reachable for the postgres user.
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kling-queue-pg-'));
	if (osUser) fs.chownSync(dir, osUser.uid, osUser.gid);
	const dataDir = path.join(dir, 'data');
	if (onDataDir) onDataDir(dataDir);
	const logFile = path.join(dir, 'postgres.log');
	const pwFile = path.join(dir, 'pwfile');
	fs.writeFileSync(pwFile, `${POSTGRES_PASSWORD}\n`, { mode: 0o600 });
	if (osUser) fs.chownSync(pwFile, osUser.uid, osUser.gid);
	const asUser = { ...(osUser ? { uid: osUser.uid, gid: osUser.gid } : {}), cwd: dir };
	const env = { ...process.env, ...(osUser ? { HOME: dir, USER: osUser.name, LOGNAME: osUser.name } : {}), PGPASSWORD: POSTGRES_PASSWORD };
	const pg = (tool, args, options = {}) => runAs(path.join(pgBinDir, tool), args, { ...asUser, env, ...options });

	await pg('initdb', ['-D', dataDir, '-U', POSTGRES_USER, '-A', 'scram-sha-256', `--pwfile=${pwFile}`, '-E', 'UTF8', '--no-sync', '--locale=C']);
	const stop = async () => {
		if (!fs.existsSync(path.join(dataDir, 'postmaster.pid'))) return removeQuietly(dir);
		await pg('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop'], { allowFailure: true });
		if (fs.existsSync(path.join(dataDir, 'postmaster.pid'))) killPostmaster(dataDir);
		removeQuietly(dir);
	};
	const serverOptions = [
		`-p ${port}`,
		'-h 127.0.0.1',
		`-k ${dir}`,
		// A throwaway cluster: durability does not matter, speed on a small machine does.
		'-c fsync=off',
		'-c synchronous_commit=off',
		'-c full_page_writes=off',
		'-c max_connections=100',
	].join(' ');
	try {
		await pg('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', serverOptions, '-w', '-t', '60', 'start']);
		await pg('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', POSTGRES_USER, POSTGRES_DATABASE]);
	} catch (error) {
		await stop().catch(() => {});
		throw new Error(`${error.message}\npostgres log:\n${readTail(logFile)}`);
	}
	return {
		port,
		host: '127.0.0.1',
		database: POSTGRES_DATABASE,
		user: POSTGRES_USER,
		password: POSTGRES_PASSWORD,
		dataDir,
		logFile,
		stop,
	};
}

function runAs(cmd, args, { uid, gid, cwd, env, allowFailure = false }) {
	return new Promise((resolve, reject) => {
		const child = spawn(cmd, args, { uid, gid, cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
		let output = '';
		child.stdout.on('data', (d) => (output += d));
		child.stderr.on('data', (d) => (output += d));
		child.on('error', reject);
		child.on('close', (code) => {
			if (code !== 0 && !allowFailure) reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed (exit ${code}):\n${output.slice(-3000)}`));
			else resolve({ code, output });
		});
	});
}

function killPostmaster(dataDir) {
	try {
		const pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
		// Only when that pid still is this cluster's postmaster (pids are reused).
		if (pid && readProc(pid, 'cmdline').includes(dataDir)) process.kill(pid, 'SIGQUIT');
	} catch {}
}

function readProc(pid, file) {
	try {
		return fs.readFileSync(`/proc/${pid}/${file}`, 'latin1');
	} catch {
		return '';
	}
}

// ---------------------------------------------------------------------------------------------------------
// A registry of what a cluster started, so that another process (a test runner's global teardown or signal
// handler) can kill it when the owner could not stop it: n8n processes are found by their user folder in
// /proc/<pid>/environ (that also finds task runners and a main still starting), Redis by its pid file,
// Postgres by its data folder.

function readRegistry(file) {
	try {
		return JSON.parse(fs.readFileSync(file, 'utf8'));
	} catch {
		return [];
	}
}

function addToRegistry(file, entry) {
	if (!file) return;
	const entries = readRegistry(file);
	entries.push(entry);
	fs.writeFileSync(file, JSON.stringify(entries, null, 2));
}

/** Kills (SIGKILL; Postgres SIGQUIT) everything listed in a registry file that still runs. Synchronous. */
function killRegistered(file) {
	const entries = readRegistry(file);
	if (entries.length === 0) return 0;
	let killed = 0;
	const userFolders = entries.filter((e) => e.userFolder).map((e) => `N8N_USER_FOLDER=${e.userFolder}\0`);
	if (userFolders.length > 0) {
		let pids = [];
		try {
			pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid);
		} catch {}
		for (const pid of pids) {
			const environ = readProc(pid, 'environ');
			if (environ && userFolders.some((u) => environ.includes(u))) {
				try {
					process.kill(Number(pid), 'SIGKILL');
					killed++;
				} catch {}
			}
		}
	}
	for (const { redisPidFile } of entries.filter((e) => e.redisPidFile)) {
		try {
			const pid = Number(fs.readFileSync(redisPidFile, 'utf8'));
			if (pid && readProc(pid, 'cmdline').includes('redis-server')) {
				process.kill(pid, 'SIGKILL');
				killed++;
			}
		} catch {}
	}
	for (const { postgresDataDir } of entries.filter((e) => e.postgresDataDir)) {
		if (fs.existsSync(path.join(postgresDataDir, 'postmaster.pid'))) {
			killPostmaster(postgresDataDir);
			killed++;
		}
	}
	return killed;
}

function removeQuietly(dir) {
	try {
		fs.rmSync(dir, { recursive: true, force: true });
	} catch {}
}

// ---------------------------------------------------------------------------------------------------------
// n8n in queue mode

/** Environment shared by the main and the workers: queue mode, Postgres, Redis, binary data in the database. */
function queueEnv({ redis, postgres }) {
	return {
		EXECUTIONS_MODE: 'queue',
		QUEUE_BULL_REDIS_HOST: '127.0.0.1',
		QUEUE_BULL_REDIS_PORT: String(redis.port),
		DB_TYPE: 'postgresdb',
		DB_POSTGRESDB_HOST: postgres.host,
		DB_POSTGRESDB_PORT: String(postgres.port),
		DB_POSTGRESDB_DATABASE: postgres.database,
		DB_POSTGRESDB_USER: postgres.user,
		DB_POSTGRESDB_PASSWORD: postgres.password,
		// What n8n documents for queue mode (its default there; S3 needs a licence). Set explicitly because
		// N8nInstance sets `filesystem` for single-process n8n.
		N8N_DEFAULT_BINARY_DATA_MODE: 'database',
		// Manual runs from the editor go to the workers as well (as production executions do).
		OFFLOAD_MANUAL_EXECUTIONS_TO_WORKERS: 'true',
	};
}

/**
 * An N8nInstance whose commands and processes run in queue mode against the cluster's Redis and Postgres.
 * Adds `startMain()` (n8n start) and `startWorker()` (n8n worker).
 */
class QueueN8nInstance extends N8nInstance {
	/**
	 * @param {object} n8n      what host.ensureN8n() returned
	 * @param {object} options  N8nInstance options plus `redis` and `postgres` (what startRedis/startPostgres
	 *                          returned) and `logDir` (one log file per process)
	 */
	constructor(n8n, options) {
		super(n8n, { ...options, env: { ...queueEnv(options), ...(options.env || {}) } });
		this.logDir = options.logDir || path.join(this.userFolder, 'logs');
		fs.mkdirSync(this.logDir, { recursive: true });
	}

	/** `n8n start` (start this first: it migrates the database and registers the webhooks). */
	async startMain(options = {}) {
		const server = await this.start({
			echo: false,
			...options,
			env: { N8N_EVENTBUS_LOGWRITER_LOGBASENAME: 'n8nEventLog-main', ...(options.env || {}) },
		});
		const logFile = path.join(this.logDir, 'main.log');
		attachLog(server.child, logFile, server.output());
		return { ...server, name: 'main', pid: server.child.pid, logFile, eventLog: this.eventLogFile('main', 'main') };
	}

	/**
	 * The event log a process writes (n8n's own record of its events, e.g. n8n.queue.job.dequeued with the
	 * worker's host id). n8n 2.41 appends "-worker" to the base name in worker processes; rotated files
	 * end in -1.log, -2.log, ….
	 */
	eventLogFile(name, processType = 'worker') {
		return path.join(this.n8nFolder, `n8nEventLog-${name}${processType === 'worker' ? '-worker' : ''}.log`);
	}

	/**
	 * `n8n worker --concurrency=<n>` in its own process group; resolves once its health server answers
	 * /healthz/readiness (database and Redis reachable). Returns
	 * {name, pid, child, healthPort, logFile, eventLog, exited, stop(), kill(signal), output()}.
	 */
	async startWorker({ name, concurrency = DEFAULT_CONCURRENCY, env = {}, timeoutMs = 120000 }) {
		const healthPort = await freePort();
		const childEnv = this.env({
			N8N_RUNNERS_BROKER_PORT: String(await freePort()),
			N8N_EVENTBUS_LOGWRITER_LOGBASENAME: `n8nEventLog-${name}`,
			QUEUE_HEALTH_CHECK_ACTIVE: 'true',
			QUEUE_HEALTH_CHECK_PORT: String(healthPort),
			N8N_WORKER_SERVER_ADDRESS: '127.0.0.1',
			...env,
		});
		const child = spawn(this.n8n.node.nodeBin, [this.n8n.bin, 'worker', `--concurrency=${concurrency}`], {
			cwd: this.userFolder,
			env: childEnv,
			detached: true, // own process group: stop() and kill() reach its task runner too
			stdio: ['ignore', 'pipe', 'pipe'],
		});
		const logFile = path.join(this.logDir, `${name}.log`);
		const output = attachLog(child, logFile);
		const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
		const worker = {
			name,
			pid: child.pid,
			child,
			healthPort,
			concurrency,
			logFile,
			eventLog: this.eventLogFile(name),
			exited,
			output,
			stop: () => stopProcessGroup(child, exited),
			/** Sends a signal to the worker's whole process group (SIGKILL: a crash, nothing cleaned up). */
			kill: (signal = 'SIGKILL') => {
				try {
					process.kill(-child.pid, signal);
				} catch {}
				return exited;
			},
		};
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const state = await Promise.race([exited.then((e) => ({ exited: e })), delay(500).then(() => null)]);
			if (state?.exited) {
				throw new Error(`n8n worker ${name} exited (${state.exited.code ?? state.exited.signal}) before it was ready:\n${output().slice(-4000)}`);
			}
			try {
				const res = await fetch(`http://127.0.0.1:${healthPort}/healthz/readiness`);
				if (res.ok) break;
			} catch {}
			if (Date.now() > deadline) {
				await worker.stop();
				throw new Error(`n8n worker ${name} was not ready within ${timeoutMs / 1000} s:\n${output().slice(-4000)}`);
			}
		}
		return worker;
	}

	/**
	 * `n8n webhook`: a webhook process (production webhooks only, no editor) in its own process group, on
	 * its own N8N_PORT and runner broker port; resolves once it answers /healthz/readiness. Returns
	 * {name, pid, child, port, url, logFile, exited, stop(), output()}. Start the main first: it registers
	 * the webhooks that these processes look up.
	 */
	async startWebhookProcess({ name, port, env = {}, timeoutMs = 120000 }) {
		port = port || (await freePort());
		const childEnv = this.env({
			N8N_PORT: String(port),
			N8N_RUNNERS_BROKER_PORT: String(await freePort()),
			N8N_EVENTBUS_LOGWRITER_LOGBASENAME: `n8nEventLog-${name}`,
			...env,
		});
		const child = spawn(this.n8n.node.nodeBin, [this.n8n.bin, 'webhook'], {
			cwd: this.userFolder,
			env: childEnv,
			detached: true,
			stdio: ['ignore', 'pipe', 'pipe'],
		});
		const logFile = path.join(this.logDir, `${name}.log`);
		const output = attachLog(child, logFile);
		const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
		const url = `http://127.0.0.1:${port}`;
		const processInfo = { name, pid: child.pid, child, port, url, logFile, exited, output, stop: () => stopProcessGroup(child, exited) };
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const state = await Promise.race([exited.then((e) => ({ exited: e })), delay(500).then(() => null)]);
			if (state?.exited) {
				throw new Error(`n8n webhook ${name} exited (${state.exited.code ?? state.exited.signal}) before it was ready:\n${output().slice(-4000)}`);
			}
			try {
				const res = await fetch(`http://127.0.0.1:${port}/healthz/readiness`);
				if (res.ok) break;
			} catch {}
			if (Date.now() > deadline) {
				await processInfo.stop();
				throw new Error(`n8n webhook ${name} was not ready within ${timeoutMs / 1000} s:\n${output().slice(-4000)}`);
			}
		}
		return processInfo;
	}
}

/**
 * A load balancer in miniature, on loopback: each request goes to the next target in turn (round robin),
 * body and headers as received, the target's answer passed back. `hold = true` answers every request
 * itself with 200 and forwards nothing (a provider's callbacks that must not reach n8n yet).
 * Resolves with {url, port, requests, hold, close()}; `requests` records {at, method, url, target, status, body}.
 */
async function startRoundRobinProxy({ targets, port }) {
	port = port || (await freePort());
	const requests = [];
	let next = 0;
	const proxy = { url: `http://127.0.0.1:${port}`, port, requests, hold: false, close: undefined };
	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			const body = Buffer.concat(chunks);
			const record = { at: Date.now(), method: req.method, url: req.url, target: undefined, status: undefined, body: body.toString('utf8') };
			requests.push(record);
			if (proxy.hold) {
				record.status = 200;
				res.writeHead(200, { 'content-type': 'application/json' }).end('{"held":true}');
				return;
			}
			const target = targets[next++ % targets.length];
			record.target = target;
			const upstream = http.request(
				`${target}${req.url}`,
				{ method: req.method, headers: { ...req.headers, host: new URL(target).host } },
				(answer) => {
					record.status = answer.statusCode;
					res.writeHead(answer.statusCode || 502, answer.headers);
					answer.pipe(res);
				},
			);
			upstream.on('error', (error) => {
				record.status = 502;
				record.error = error.message;
				if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
				res.end(`proxy: ${error.message}`);
			});
			upstream.end(body);
		});
	});
	await new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, '127.0.0.1', resolve);
	});
	proxy.close = () => new Promise((resolve) => {
		server.closeAllConnections?.();
		server.close(() => resolve());
	});
	return proxy;
}

/** Appends a child's stdout and stderr to a file; returns output() with everything so far. */
function attachLog(child, file, earlier = '') {
	const stream = fs.createWriteStream(file, { flags: 'a' });
	let output = earlier;
	if (earlier) stream.write(earlier);
	const onData = (d) => {
		output += d;
		stream.write(d);
	};
	child.stdout.on('data', onData);
	child.stderr.on('data', onData);
	child.on('close', () => stream.end());
	return () => output;
}

/**
 * Redis, Postgres, a main and workers, started in that order and stopped in reverse by stop() (which
 * also cleans up after a failed start). A process exit handler kills what is left if stop() never ran.
 */
class QueueCluster {
	/**
	 * @param {object} n8n                 what host.ensureN8n() returned
	 * @param {object} options
	 * @param {string} options.workDir     user folder, logs and Redis data go under it
	 * @param {string} [options.filesDir]
	 * @param {number} [options.workers]       default 2
	 * @param {number} [options.concurrency]   per worker, default 5
	 * @param {object} [options.env]       more environment for every n8n process and command
	 * @param {object} [options.mainEnv]   more environment for the main only
	 * @param {string} [options.registryFile]  a JSON file listing what this cluster starts, for killRegistered()
	 *                                     from another process (a test runner's teardown or signal handler)
	 */
	constructor(n8n, options) {
		this.n8n = n8n;
		this.workDir = path.resolve(options.workDir);
		this.options = options;
		this.workerCount = options.workers ?? DEFAULT_WORKERS;
		this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
		this.redis = undefined;
		this.postgres = undefined;
		this.instance = undefined;
		this.main = undefined;
		this.workers = [];
		this.webhookProcesses = [];
		this.stopped = false;
		this.userFolder = path.join(this.workDir, 'n8n');
		this.registryFile = options.registryFile;
		addToRegistry(this.registryFile, { userFolder: this.userFolder, redisPidFile: path.join(this.workDir, 'redis', 'redis.pid') });
		this.onExit = () => this.killNow();
		process.on('exit', this.onExit);
	}

	/** Redis and Postgres (in parallel); then `this.instance` is ready for installs, imports and publishing. */
	async startServices() {
		this.services = await ensureQueueServices();
		fs.mkdirSync(this.workDir, { recursive: true });
		const [redis, postgres] = await Promise.allSettled([
			startRedis({ redisServer: this.services.redisServer, dir: path.join(this.workDir, 'redis') }),
			startPostgres({
				pgBinDir: this.services.pgBinDir,
				onDataDir: (dataDir) => {
					this.postgresDataDir = dataDir;
					addToRegistry(this.registryFile, { postgresDataDir: dataDir });
				},
			}),
		]);
		if (redis.status === 'fulfilled') this.redis = redis.value;
		if (postgres.status === 'fulfilled') this.postgres = postgres.value;
		if (redis.status === 'rejected') throw redis.reason;
		if (postgres.status === 'rejected') throw postgres.reason;
		log(`Redis ${this.services.redisVersion} on 127.0.0.1:${this.redis.port}, PostgreSQL ${this.services.postgresVersion} on 127.0.0.1:${this.postgres.port}`);
		this.instance = new QueueN8nInstance(this.n8n, {
			userFolder: this.userFolder,
			filesDir: this.options.filesDir,
			logDir: path.join(this.workDir, 'logs'),
			redis: this.redis,
			postgres: this.postgres,
			env: this.options.env,
		});
		return this.instance;
	}

	/** The main (owner from the environment), then the workers. Options as for N8nInstance.start(). */
	async startN8n(mainOptions) {
		const started = Date.now();
		this.main = await this.instance.startMain({ ...mainOptions, env: { ...(this.options.mainEnv || {}), ...(mainOptions.env || {}) } });
		log(`n8n main ready on ${this.main.url} (${host.formatSeconds(Date.now() - started)})`);
		const workersStarted = Date.now();
		for (let i = 1; i <= this.workerCount; i++) await this.startWorker(`worker-${i}`);
		log(`${this.workerCount} workers ready (concurrency ${this.concurrency} each, ${host.formatSeconds(Date.now() - workersStarted)})`);
		return this.main;
	}

	/** Starts (or restarts) one worker by name. */
	async startWorker(name) {
		const worker = await this.instance.startWorker({ name, concurrency: this.concurrency });
		this.workers = [...this.workers.filter((w) => w.name !== name), worker];
		return worker;
	}

	/** Starts `n8n webhook` processes (after the main), in parallel; resolves with all of them. */
	async startWebhookProcesses(names, env = {}) {
		const started = await Promise.all(names.map((name) => this.instance.startWebhookProcess({ name, env })));
		this.webhookProcesses.push(...started);
		return started;
	}

	/** Stops the workers, the main, Redis and Postgres; safe to call more than once and after a failed start. */
	async stop() {
		if (this.stopped) return;
		this.stopped = true;
		const errors = [];
		const attempt = async (fn) => {
			try {
				await fn();
			} catch (error) {
				errors.push(error);
			}
		};
		await Promise.all([...this.workers, ...this.webhookProcesses].map((w) => attempt(() => w.stop())));
		if (this.main) await attempt(() => this.main.stop());
		if (this.redis) await attempt(() => this.redis.stop());
		if (this.postgres) await attempt(() => this.postgres.stop());
		process.removeListener('exit', this.onExit);
		if (errors.length > 0) log(`while stopping the queue-mode set-up: ${errors.map((e) => e.message).join('; ')}`);
	}

	/** Synchronous last resort when the process exits without stop(). */
	killNow() {
		if (this.stopped) return;
		this.stopped = true;
		for (const child of [...this.workers.map((w) => w.child), ...this.webhookProcesses.map((w) => w.child), this.main?.child, this.redis?.child]) {
			if (!child) continue;
			try {
				process.kill(-child.pid, 'SIGKILL');
			} catch {}
		}
		if (this.postgresDataDir) killPostmaster(this.postgresDataDir);
	}
}

module.exports = {
	DEFAULT_WORKERS,
	DEFAULT_CONCURRENCY,
	ensureQueueServices,
	findServices,
	startRedis,
	startPostgres,
	killRegistered,
	readRegistry,
	queueEnv,
	QueueN8nInstance,
	QueueCluster,
	startRoundRobinProxy,
};
