import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

export type CredentialSource =
  | 'ANTHROPIC_API_KEY'
  | 'ANTHROPIC_AUTH_TOKEN'
  | 'CLAUDE_CODE_OAUTH_TOKEN'
  | 'claude login'
  | 'custom endpoint';

/** Where Claude Code will find credentials, if anywhere (checked only to explain failures up front). */
export function findClaudeCredentials(env: NodeJS.ProcessEnv = process.env): CredentialSource | null {
  if (env.ANTHROPIC_API_KEY) return 'ANTHROPIC_API_KEY';
  if (env.ANTHROPIC_AUTH_TOKEN) return 'ANTHROPIC_AUTH_TOKEN';
  if (env.CLAUDE_CODE_OAUTH_TOKEN) return 'CLAUDE_CODE_OAUTH_TOKEN';
  const configDir = env.CLAUDE_CONFIG_DIR ?? path.join(env.HOME ?? homedir(), '.claude');
  if (existsSync(path.join(configDir, '.credentials.json'))) return 'claude login';
  if (env.ANTHROPIC_BASE_URL) return 'custom endpoint';
  return null;
}

export const MISSING_CREDENTIALS_MESSAGE = [
  'Claude credentials not found: tasks will fail (CREDENTIALS_MISSING, with what to set) until you set one of',
  '  ANTHROPIC_API_KEY=sk-ant-…        (an Anthropic API key), or',
  '  CLAUDE_CODE_OAUTH_TOKEN=…         (from `claude setup-token`), or log in once with `claude login`.',
  'To see the whole flow without any account, run `npx bematic demo`.',
].join('\n');
