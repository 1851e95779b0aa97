import type { FileDiffStat } from '@bematic/protocol';
import type { Task } from '../db/repositories/types.js';
import { formatDuration } from '../duration.js';
import { formatCost } from '../notifications/format.js';

const TITLE_LIMIT = 120;
const RESULT_LIMIT = 4000;

/** Where a person reads the thread, when the surface has addresses (Slack does; the local console does not). */
export function threadLink(
  surface: 'slack' | 'console',
  task: Pick<Task, 'channelId' | 'threadTs'>,
): string | null {
  if (surface !== 'slack' || !task.threadTs) return null;
  return `https://slack.com/archives/${encodeURIComponent(task.channelId)}/p${task.threadTs.replace('.', '')}`;
}

/**
 * Title and body of the pull request for a thread's branch: the request, the
 * latest result, every file with lines added and removed, what it cost, and a
 * link back to the conversation.
 */
export function pullRequestText(
  thread: readonly Task[],
  link: string | null,
): { title: string; body: string } {
  const first = thread[0];
  const last = thread[thread.length - 1];
  if (!first || !last) throw new Error('a pull request needs at least one task');
  const request = first.prompt.trim();
  const firstLine = request.split('\n')[0]?.trim() || `${first.botName} ${first.command}`;
  const title = firstLine.length > TITLE_LIMIT ? `${firstLine.slice(0, TITLE_LIMIT - 1)}…` : firstLine;

  const files = new Map<string, FileDiffStat>();
  for (const t of thread) {
    for (const f of t.workspace?.files ?? []) {
      const seen = files.get(f.path);
      files.set(
        f.path,
        seen
          ? {
              ...f,
              added: seen.added + f.added,
              removed: seen.removed + f.removed,
              binary: seen.binary || f.binary,
            }
          : f,
      );
    }
  }
  const cost = thread.reduce((sum, t) => sum + t.costUsd, 0);
  const duration = thread.reduce((sum, t) => sum + t.durationMs, 0);
  const result = (last.result ?? '').trim();
  const lines = [
    '## Request',
    '',
    quote(request),
    ...thread.slice(1).flatMap((t) => ['', quote(t.prompt.trim())]),
    '',
    '## Result',
    '',
    result ? (result.length > RESULT_LIMIT ? `${result.slice(0, RESULT_LIMIT)}…` : result) : '_No summary._',
    '',
    `## Files (${files.size})`,
    '',
    ...[...files.values()]
      .slice(0, 100)
      .map((f) => (f.binary ? `- \`${f.path}\` (binary)` : `- \`${f.path}\` +${f.added} −${f.removed}`)),
    ...(files.size > 100 ? [`- … and ${files.size - 100} more`] : []),
    '',
    '---',
    `Made by Bematic (${first.botName} · \`${first.model}\`) in ${thread.length} task${thread.length === 1 ? '' : 's'}: ` +
      `${formatCost(cost)}, ${formatDuration(duration)}. Tasks: ${thread.map((t) => `\`${t.id}\``).join(', ')}.`,
    link ? `Conversation: ${link}` : 'Started from the Bematic console.',
  ];
  return { title, body: lines.join('\n').slice(0, 60_000) };
}

function quote(text: string): string {
  return text
    .split('\n')
    .map((l) => `> ${l}`)
    .join('\n');
}
