import type {
	IAuthenticateGeneric,
	Icon,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

import { BASE_URL_END, CREDENTIAL_TYPE, DEFAULT_BASE_URL, OMNI_IMAGE_PATH } from '../nodes/shared/contract';

/**
 * The test's base URL, cut the way the nodes cut it (normalizeBaseUrl): an n8n expression built from
 * the same pattern, so that a Base URL ending in `/v1` is tested at the address the nodes will call.
 */
const TESTED_BASE_URL = `={{ String($credentials.baseUrl || '${DEFAULT_BASE_URL}').trim().replace(${String(BASE_URL_END)}, '') }}`;

/** A test's message is fixed text, so it names the change that fits every Base URL: keep only the host. */
const WRONG_PATH_MESSAGE = `The Base URL does not lead to CometAPI's Kling API: the test's request was answered with a web page, not by the API. The Kling paths (${OMNI_IMAGE_PATH}) are at the host's root: set the Base URL to the host alone, without a path (for CometAPI: ${DEFAULT_BASE_URL}; a final /v1 is fine).`;

/**
 * CometAPI key and base URL. The name is deliberately not `cometApi`/`cometApiApi`: other CometAPI
 * packages already use those, and n8n credential type names are global.
 */
export class CometApiKlingApi implements ICredentialType {
	name = CREDENTIAL_TYPE;

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
			default: DEFAULT_BASE_URL,
			required: true,
			description:
				'Change only to reach CometAPI through a proxy or a test server. A Base URL ending in /v1 (as CometAPI gives it for its OpenAI-compatible API) works too: the Kling paths are at the host\'s root.',
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
	 * nothing. A valid key gets `task_not_exist`, which may come as HTTP 200, 400 or 404, so only a
	 * rejected key (401/403, as an HTTP status or as the body's `code`) and server errors fail the test.
	 * The body rules also cover n8n 1.x, which ignores the `except` list and treats every status as success.
	 */
	test: ICredentialTestRequest = {
		request: {
			baseURL: TESTED_BASE_URL,
			url: `${OMNI_IMAGE_PATH}/n8n-credential-check`,
			method: 'GET',
			ignoreHttpStatusErrors: { ignore: true, except: [401, 403, 500, 502, 503, 504] },
		},
		rules: [
			...[401, 403].map((status) => ({
				type: 'responseCode' as const,
				properties: { value: status, message: refusedMessage(status, `HTTP ${status}`) },
			})),
			...[401, 403].map((code) => ({
				type: 'responseSuccessBody' as const,
				properties: { key: 'code', value: code, message: refusedMessage(code, `code ${code}`) },
			})),
			// CometAPI's own envelope, where the status lets the body through (any status on n8n 1.x).
			{
				type: 'responseSuccessBody' as const,
				properties: {
					key: 'error.code',
					value: 'insufficient_user_quota',
					message: 'CometAPI accepted the key, but the account has no quota left (insufficient_user_quota). Top up your CometAPI balance.',
				},
			},
			// A web page instead of the API (a host or path that does not serve the Kling API, often HTTP 404,
			// which a task_not_exist may also be): n8n hands a body that is not JSON over as text, and the
			// rule's key `0` reads its first character.
			{
				type: 'responseSuccessBody' as const,
				properties: { key: '0', value: '<', message: WRONG_PATH_MESSAGE },
			},
		] as ICredentialTestRequest['rules'],
	};
}

/**
 * 401 is a wrong key. CometAPI also answers 403 for an account without quota (insufficient_user_quota),
 * and n8n's rules cannot read the body of an error status, so a 403 names both causes.
 */
function refusedMessage(status: number, answer: string): string {
	if (status === 403) {
		return `CometAPI refused the API key (${answer}): the key is not allowed, or the account has no quota left. Check the key and your CometAPI balance.`;
	}
	return `CometAPI rejected the API key (${answer}). Check the key.`;
}
