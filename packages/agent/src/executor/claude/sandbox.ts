import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { SDKResultMessage } from '@anthropic-ai/claude-agent-sdk';

export const SANDBOX_HOW_TO =
  'Commands run in an OS sandbox, and it could not start on this agent. On Debian/Ubuntu: ' +
  '`sudo apt-get install bubblewrap socat` (on macOS the sandbox is built in). ' +
  'Where unprivileged user namespaces are disabled, enable them (sysctl kernel.unprivileged_userns_clone=1). ' +
  'To run commands unconfined instead, set BEMATIC_SANDBOX=off on the agent.';

/** The error text for a run Claude Code refused to start because the sandbox is missing, else undefined. */
export function sandboxUnavailable(result: SDKResultMessage): string | undefined {
  const reason = 'startup_failure_reason' in result ? result.startup_failure_reason : undefined;
  const text = result.subtype === 'success' ? result.result : result.errors.join('; ');
  if (reason !== 'sandbox_required_unavailable' && !/sandbox required but unavailable/i.test(text))
    return undefined;
  const detail = text.replace(/ · .*$/s, '').trim();
  return `${detail || 'The sandbox is unavailable'}. ${SANDBOX_HOW_TO}`;
}

export interface SandboxSupport {
  available: boolean;
  /** Programs the sandbox needs that this machine lacks. */
  missing: string[];
  /** How to get it working, for a banner; undefined when available. */
  howTo?: string;
}

/** Whether Claude Code's sandbox can run here: bubblewrap + socat on Linux, the built-in one on macOS. */
export function detectSandbox(
  searchPath: string = process.env.PATH ?? '',
  platform: NodeJS.Platform = process.platform,
): SandboxSupport {
  if (platform === 'darwin') return { available: true, missing: [] };
  if (platform !== 'linux')
    return { available: false, missing: [], howTo: `the command sandbox does not run on ${platform}` };
  const dirs = searchPath.split(path.delimiter).filter(Boolean);
  const missing = ['bwrap', 'socat'].filter((bin) => !dirs.some((d) => isExecutable(path.join(d, bin))));
  if (missing.length === 0) return { available: true, missing };
  return { available: false, missing, howTo: 'sudo apt-get install bubblewrap socat' };
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
