/**
 * n8n-core's own copies of its internal dependencies.
 *
 * `@n8n/di` (the DI Container) and `@n8n/backend-common` (Logger) are not
 * dependencies of this package, only of n8n-core. They are resolved *from
 * n8n-core's folder* so that we always talk to the very same Container instance
 * n8n-core uses, even if npm ever nests a different copy somewhere else (a
 * second Container would silently hand out a second, unconfigured set of
 * services). The `import type`s are compile-time only.
 */
import { dirname } from 'node:path';

import type { Container as DiContainer } from '@n8n/di';
import type { Logger as BackendLogger } from '@n8n/backend-common';

const n8nCoreDir = dirname(require.resolve('n8n-core'));

function requireFromN8nCore<T>(id: string): T {
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	return require(require.resolve(id, { paths: [n8nCoreDir] })) as T;
}

export const Container: typeof DiContainer =
	requireFromN8nCore<{ Container: typeof DiContainer }>('@n8n/di').Container;
export const Logger: typeof BackendLogger =
	requireFromN8nCore<{ Logger: typeof BackendLogger }>('@n8n/backend-common').Logger;
