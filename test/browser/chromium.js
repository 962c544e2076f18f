'use strict';
/*
 * Debian's Chromium for the browser tests: found on this machine, or installed with apt-get on a fresh one
 * (as root, or through password-less sudo). No browser is downloaded from anywhere else.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium'];

function findChromium() {
	const fromEnv = process.env.KLING_CHROMIUM;
	if (fromEnv) {
		if (!fs.existsSync(fromEnv)) throw new Error(`KLING_CHROMIUM=${fromEnv} does not exist`);
		return fromEnv;
	}
	return CANDIDATES.find((file) => fs.existsSync(file));
}

function runOrThrow(cmd, args, log) {
	log(`$ ${cmd} ${args.join(' ')}`);
	const result = spawnSync(cmd, args, {
		stdio: ['ignore', 'pipe', 'pipe'],
		encoding: 'utf8',
		env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
	});
	if (result.status !== 0) {
		throw new Error(`${cmd} ${args.join(' ')} failed (exit ${result.status}):\n${(result.stderr || result.stdout).slice(-3000)}`);
	}
}

/** The path of a Chromium binary; installs Debian's `chromium` package first when there is none. */
function ensureChromium(log = (m) => process.stderr.write(`[browser] ${m}\n`)) {
	const found = findChromium();
	if (found) return found;
	const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
	const sudo = !isRoot && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
	if (!isRoot && !sudo) {
		throw new Error(
			'Chromium is not installed and this user cannot install it: run `apt-get install -y chromium` as root, ' +
				'or set KLING_CHROMIUM to a Chromium binary',
		);
	}
	const prefix = isRoot ? [] : ['sudo', '-n'];
	const apt = (args) => (prefix.length ? runOrThrow(prefix[0], [...prefix.slice(1), 'apt-get', ...args], log) : runOrThrow('apt-get', args, log));
	const started = Date.now();
	log('Chromium is not installed: installing Debian\'s chromium package (about 2 min)');
	apt(['update']);
	apt(['install', '-y', 'chromium']);
	const installed = findChromium();
	if (!installed) throw new Error('apt-get installed chromium, but no chromium binary was found');
	log(`Chromium installed in ${Math.round((Date.now() - started) / 1000)} s: ${installed}`);
	return installed;
}

module.exports = { findChromium, ensureChromium };
