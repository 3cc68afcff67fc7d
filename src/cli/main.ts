import { ConfigError } from '../domain/config.js';
import { AppError } from '../domain/errors.js';
import * as auth from '../engine/auth-service.js';
import { isProviderChannel, providerSpecs } from '../domain/provider-settings.js';
import * as providerSettings from '../engine/provider-settings-service.js';
import { integrationSpecs, isIntegrationProvider } from '../domain/integration-settings.js';
import * as integrations from '../engine/integration-service.js';
import { SchemaTooNewError } from '../store/migrate.js';
import { createRuntime } from './runtime.js';
import { runServer } from './server.js';
import { runMcpCommand } from './mcp-command.js';

const usage = `Usage: nudge <command>

Commands:
  start                      API, scheduler and dispatcher in one process
  api                        the API only
  worker                     scheduler and dispatcher only
  migrate                    bring the database schema up to date and exit
  mcp                        the MCP tools over stdin/stdout for an agent, acting for the
                             API token in NUDGE_API_TOKEN
  workspace create NAME      create a workspace (prints its id)
  workspace list             list workspaces
  token create --name N [--workspace W] [--scopes a,b] [--rate-limit N]
                             create an API token (prints only the token)
  token list [--workspace W] list tokens (never the tokens themselves)
  token revoke ID|PREFIX     revoke a token
  channel list [--workspace W]
                             each channel's provider (or sandbox), settings and status
  channel set whatsapp --phone-number-id ID --access-token T [--business-account-id ID]
                       [--app-secret S] [--verify-token V] [--graph-version v23.0] [--base-url URL]
  channel set sms --account-sid AC… --auth-token T (--from +1… | --messaging-service-sid MG…) [--base-url URL]
  channel set email --from "Acme <hello@acme.com>" --url smtps://user:pass@host:465
                             connect a channel to its provider ([--workspace W]); a secret
                             given as - is read from stdin, keeping it out of shell history
  channel remove CHANNEL [--workspace W]
                             disconnect a channel: it uses the sandbox again
  integration list [--workspace W]
                             the discount integrations (stripe, shopify), their settings and status
  integration set stripe --secret-key sk_… [--base-url URL]
  integration set shopify --shop-domain acme.myshopify.com --access-token shpat_… [--api-version 2024-10] [--base-url URL]
                             connect a discount provider, checking the credentials with it
                             ([--workspace W]); a secret given as - is read from stdin
  integration remove PROVIDER [--workspace W]
                             disconnect a discount provider

Configuration comes from environment variables; see .env.example.`;

function takeFlag(args: string[], name: string): string | undefined {
  const index = args.indexOf(`--${name}`);
  if (index === -1) {
    const inline = args.find((a) => a.startsWith(`--${name}=`));
    if (inline) {
      args.splice(args.indexOf(inline), 1);
      return inline.slice(name.length + 3);
    }
    return undefined;
  }
  const value = args[index + 1];
  if (value === undefined || value.startsWith('--')) throw new AppError('bad_request', `--${name} needs a value`);
  args.splice(index, 2);
  return value;
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

export async function main(argv: string[]): Promise<void> {
  const args = [...argv];
  const command = args.shift();
  try {
    switch (command) {
      case 'start':
      case 'api':
      case 'worker':
        await runServer(command, process.env);
        return;
      case 'migrate': {
        const runtime = await createRuntime(process.env);
        out('database is up to date');
        await runtime.close();
        return;
      }
      case 'mcp':
        await runMcpCommand(process.env);
        return;
      case 'workspace':
        await workspaceCommand(args);
        return;
      case 'token':
        await tokenCommand(args);
        return;
      case 'channel':
        await channelCommand(args);
        return;
      case 'integration':
        await integrationCommand(args);
        return;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out(usage);
        return;
      default:
        process.stderr.write(`nudge: unknown command "${command}"\n\n${usage}\n`);
        process.exitCode = 2;
    }
  } catch (error) {
    if (error instanceof ConfigError || error instanceof SchemaTooNewError || error instanceof AppError) {
      const problems = error instanceof AppError && error.errors ? Object.values(error.errors).flat() : [error.message];
      for (const problem of problems) process.stderr.write(`nudge: ${problem}\n`);
      process.exitCode = error instanceof AppError && error.status < 500 ? 2 : 1;
      return;
    }
    throw error;
  }
}

async function workspaceCommand(args: string[]): Promise<void> {
  const sub = args.shift();
  const runtime = await createRuntime(process.env);
  try {
    if (sub === 'create') {
      const name = args.join(' ');
      const workspace = await auth.createWorkspace(runtime.ctx, name);
      out(workspace.id);
    } else if (sub === 'list') {
      const { listWorkspaces } = await import('../store/workspace-repository.js');
      for (const w of await listWorkspaces(runtime.ctx.database.db)) out(`${w.id}\t${w.name}`);
    } else {
      throw new AppError('bad_request', 'use `nudge workspace create NAME` or `nudge workspace list`');
    }
  } finally {
    await runtime.close();
  }
}

async function tokenCommand(args: string[]): Promise<void> {
  const sub = args.shift();
  const runtime = await createRuntime(process.env);
  const ctx = runtime.ctx;
  try {
    if (sub === 'create') {
      const name = takeFlag(args, 'name');
      if (!name) throw new AppError('bad_request', 'token create needs --name NAME');
      const workspace = await auth.resolveWorkspace(ctx, takeFlag(args, 'workspace'));
      const scopes = takeFlag(args, 'scopes')?.split(',').map((s) => s.trim()).filter(Boolean);
      const rateLimitText = takeFlag(args, 'rate-limit');
      const rateLimit = rateLimitText === undefined ? null : Number(rateLimitText);
      if (rateLimit !== null && (!Number.isSafeInteger(rateLimit) || rateLimit < 1)) throw new AppError('bad_request', '--rate-limit must be a positive whole number');
      const token = await auth.createToken(ctx, { workspaceId: workspace.id, name, scopes, rateLimit });
      // Only the token on stdout, so `TOKEN=$(nudge token create …)` works.
      out(token.token);
    } else if (sub === 'list') {
      const workspaceFlag = takeFlag(args, 'workspace');
      const workspaceId = workspaceFlag === undefined ? null : (await auth.resolveWorkspace(ctx, workspaceFlag)).id;
      for (const t of await auth.listTokens(ctx, workspaceId)) {
        out([t.id, t.prefix, t.name, t.scopes.join(','), t.revoked_at ? `revoked ${t.revoked_at}` : 'active', t.last_used_at ? `last used ${t.last_used_at}` : 'never used'].join('\t'));
      }
    } else if (sub === 'revoke') {
      const id = args.shift();
      if (!id) throw new AppError('bad_request', 'token revoke needs a token id or prefix');
      await auth.revokeToken(ctx, id);
      out(`revoked ${id}`);
    } else {
      throw new AppError('bad_request', 'use `nudge token create|list|revoke`');
    }
  } finally {
    await runtime.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

function describeChannel(view: providerSettings.ChannelSettingsView): string {
  const config = Object.entries(view.config).map(([k, v]) => `${k}=${String(v)}`);
  const secrets = Object.entries(view.secrets).map(([k, v]) => `${k}=${v}`);
  return [view.channel, view.provider, view.status, [...config, ...secrets].join(' ') || '-', view.last_error ?? ''].join('\t').trimEnd();
}

async function channelCommand(args: string[]): Promise<void> {
  const sub = args.shift();
  if (sub !== 'list' && sub !== 'set' && sub !== 'remove') throw new AppError('bad_request', 'use `nudge channel list|set|remove`');
  const channel = sub === 'list' ? undefined : args.shift();
  if (sub !== 'list' && (channel === undefined || !isProviderChannel(channel))) throw new AppError('bad_request', `channel ${sub} needs a channel: whatsapp, sms or email`);
  const runtime = await createRuntime(process.env);
  const ctx = runtime.ctx;
  try {
    const workspace = await auth.resolveWorkspace(ctx, takeFlag(args, 'workspace'));
    if (sub === 'list') {
      for (const view of await providerSettings.listChannelSettings(ctx, workspace.id)) out(describeChannel(view));
    } else if (sub === 'remove') {
      await providerSettings.deleteProviderSettings(ctx, workspace.id, channel as providerSettings.ProviderChannel);
      out(`${channel} uses the sandbox`);
    } else {
      const spec = providerSpecs[channel as providerSettings.ProviderChannel];
      const input: providerSettings.ProviderSettingsInput = {};
      const provider = takeFlag(args, 'provider');
      if (provider !== undefined) input.provider = provider;
      for (const key of [...spec.configKeys, ...spec.secretKeys]) {
        let value = takeFlag(args, key.replace(/_/g, '-'));
        if (value === '-' && spec.secretKeys.includes(key)) value = await readStdin();
        if (value !== undefined) input[key] = value;
      }
      if (args.length > 0) throw new AppError('bad_request', `unknown arguments for channel set ${channel}: ${args.join(' ')}`);
      const view = await providerSettings.setProviderSettings(ctx, workspace.id, channel as providerSettings.ProviderChannel, input);
      out(describeChannel(view));
    }
  } finally {
    await runtime.close();
  }
}

function describeIntegration(view: integrations.IntegrationView): string {
  const config = Object.entries(view.config).map(([k, v]) => `${k}=${String(v)}`);
  const secrets = Object.entries(view.secrets).map(([k, v]) => `${k}=${v}`);
  return [view.provider, view.status, [...config, ...secrets].join(' ') || '-', view.last_error ?? ''].join('\t').trimEnd();
}

/** `nudge integration list|set|remove`: the same service as PUT /api/v1/settings/integrations/{provider}. */
async function integrationCommand(args: string[]): Promise<void> {
  const sub = args.shift();
  if (sub !== 'list' && sub !== 'set' && sub !== 'remove') throw new AppError('bad_request', 'use `nudge integration list|set|remove`');
  const provider = sub === 'list' ? undefined : args.shift();
  if (sub !== 'list' && (provider === undefined || !isIntegrationProvider(provider))) throw new AppError('bad_request', `integration ${sub} needs a provider: stripe or shopify`);
  const runtime = await createRuntime(process.env);
  const ctx = runtime.ctx;
  try {
    const workspace = await auth.resolveWorkspace(ctx, takeFlag(args, 'workspace'));
    if (sub === 'list') {
      for (const view of await integrations.listIntegrations(ctx, workspace.id)) out(describeIntegration(view));
    } else if (sub === 'remove') {
      await integrations.deleteIntegration(ctx, workspace.id, provider!);
      out(`${provider} disconnected`);
    } else {
      const spec = integrationSpecs[provider as integrations.IntegrationProvider];
      const input: Record<string, string> = {};
      for (const key of [...spec.configKeys, ...spec.secretKeys]) {
        let value = takeFlag(args, key.replace(/_/g, '-'));
        if (value === '-' && spec.secretKeys.includes(key)) value = await readStdin();
        if (value !== undefined) input[key] = value;
      }
      if (args.length > 0) throw new AppError('bad_request', `unknown arguments for integration set ${provider}: ${args.join(' ')}`);
      out(describeIntegration(await integrations.setIntegration(ctx, workspace.id, provider!, input)));
    }
  } finally {
    await runtime.close();
  }
}
