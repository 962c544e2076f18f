/** Ports on the loopback interface for servers a test starts itself. */

// eslint-disable-next-line @typescript-eslint/no-require-imports
const instance = require('../../scripts/lib/n8n-instance') as { freePort(): Promise<number> };

/** A port nothing listens on right now (the one `npm start` and the n8n instances also take theirs from). */
export const freePort: () => Promise<number> = instance.freePort;
