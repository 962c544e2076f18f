import type {
	IAuthenticateGeneric,
	Icon,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

/**
 * CometAPI key and base URL. The name is deliberately not `cometApi`/`cometApiApi`: other CometAPI
 * packages already use those, and n8n credential type names are global.
 */
export class CometApiKlingApi implements ICredentialType {
	name = 'cometApiKlingApi';

	displayName = 'CometAPI API';

	icon: Icon = { light: 'file:cometapi.svg', dark: 'file:cometapi.dark.svg' };

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

	/**
	 * The API has no free "who am I" call, so the test queries a task id no account has: that costs
	 * nothing. A valid key gets `task_not_exist`, which may come as HTTP 200, 400 or 404, so only
	 * 401/403 (a rejected key) and server errors fail the test.
	 */
	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl}}',
			url: '/kling/v1/images/omni-image/n8n-credential-check',
			method: 'GET',
			ignoreHttpStatusErrors: { ignore: true, except: [401, 403, 500, 502, 503, 504] },
		},
		rules: [
			{
				type: 'responseCode',
				properties: { value: 401, message: 'CometAPI rejected the API key (HTTP 401). Check the key.' },
			},
			{
				type: 'responseCode',
				properties: { value: 403, message: 'CometAPI refused this API key (HTTP 403). Check the key and its permissions.' },
			},
		],
	};
}
