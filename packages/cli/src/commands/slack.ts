import { slackManifest } from '@bematic/cloud';
import type { Command } from 'commander';

export function registerSlackCommand(program: Command): void {
  const slack = program.command('slack').description('Set up the Slack app');
  slack
    .command('manifest')
    .description(
      'Print the Slack app manifest (paste it into api.slack.com/apps → Create New App → From a manifest). ' +
        'Socket Mode by default; with --url, HTTP events posted to that address.',
    )
    .option('--url <request url>', "the cloud's public address (or full request URL) for HTTP mode")
    .option('--name <name>', 'app and bot user name', 'BematicManager')
    .action((opts: { url?: string; name: string }) => {
      try {
        const manifest = slackManifest({ name: opts.name, ...(opts.url ? { requestUrl: opts.url } : {}) });
        console.log(JSON.stringify(manifest, null, 2));
      } catch (err) {
        console.error(`bematic slack manifest: ${err instanceof Error ? err.message : String(err)}`);
        process.exitCode = 2;
      }
    });
}
