/** Servers a test starts itself on the loopback interface: a free port, listening on one, closing. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const instance = require('../../scripts/lib/n8n-instance') as { freePort(): Promise<number> };

/** A port nothing listens on right now (the one `npm start` and the n8n instances also take theirs from). */
export const freePort: () => Promise<number> = instance.freePort;

/** Starts `server` on a free loopback port and returns its base URL, http://127.0.0.1:PORT. */
export async function listenOnLoopback(server: Server): Promise<string> {
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Closes `server` and the connections still open on it (a stalled answer would keep it open otherwise). */
export async function closeServer(server: Server): Promise<void> {
	server.closeAllConnections();
	await new Promise((resolve) => server.close(resolve));
}
