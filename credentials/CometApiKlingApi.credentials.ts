import type {
	IAuthenticateGeneric,
	Icon,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

/**
 * CometAPI key and base URL. The name is deliberately not `cometApi`/`cometApiApi`: other CometAPI
 * packages already use those, and n8n credential type names are global.
 *
 * The key test lives on the node (`testedBy`): the API has no free "who am I" call, and the probe
 * (querying a task id that cannot exist) answers `task_not_exist` with an HTTP error status for a
 * valid key, which a declarative test would report as a failure.
 */
export class CometApiKlingApi implements ICredentialType {
	name = 'cometApiKlingApi';

	displayName = 'CometAPI';

	icon: Icon = 'file:cometapi.svg';

	documentationUrl = 'https://github.com/cometapi/n8n-nodes-cometapi-kling#credentials';

	properties: INodeProperties[] = [
		{
			displayName: 'API Key',
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			required: true,
			description: 'Your CometAPI key, from the API Keys page of your CometAPI account',
		},
		{
			displayName: 'Base URL',
			name: 'baseUrl',
			type: 'string',
			default: 'https://api.cometapi.com',
			required: true,
			description: 'Change only to reach CometAPI through a proxy or a test server',
		},
	];

	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: {
				Authorization: '=Bearer {{$credentials.apiKey}}',
			},
		},
	};
}
