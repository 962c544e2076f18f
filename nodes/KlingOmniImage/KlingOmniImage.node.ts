import type { IExecuteFunctions, INodeExecutionData, INodeType, INodeTypeDescription } from 'n8n-workflow';

import { router } from './actions/router';
import { versionDescription } from './actions/versionDescription';
import { cometApiKlingApiTest } from './methods/credentialTest';

export class KlingOmniImage implements INodeType {
	description: INodeTypeDescription = versionDescription;

	methods = {
		credentialTest: { cometApiKlingApiTest },
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		return await router.call(this);
	}
}
