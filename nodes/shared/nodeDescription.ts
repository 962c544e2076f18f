import type { INodeTypeDescription } from 'n8n-workflow';
import { NodeConnectionTypes } from 'n8n-workflow';

import { CREDENTIAL_TYPE } from './contract';

/**
 * What the action node and its trigger declare alike: the first version, one main output and the
 * CometAPI credential. (The icon stays in each node: n8n's community-package scanner looks for it there.)
 */
export const SHARED_DESCRIPTION = {
	version: 1,
	outputs: [NodeConnectionTypes.Main],
	credentials: [{ name: CREDENTIAL_TYPE, required: true }],
} satisfies Partial<INodeTypeDescription>;
