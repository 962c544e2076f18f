import type { IExecuteFunctions, IWebhookFunctions } from 'n8n-workflow';

/** What the shared code needs from n8n: an action node's execute context or a trigger's webhook context. */
export type NodeContext = IExecuteFunctions | IWebhookFunctions;
