import { McpServers } from '@bematic/protocol';

export class McpConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'McpConfigError';
  }
}

/**
 * Reads an MCP configuration: Claude Code's `.mcp.json` shape (`{ "mcpServers": { … } }`)
 * or the bare map of servers. A server without `type` is a stdio server, as in Claude Code.
 */
export function parseMcpConfig(text: string, source: string): McpServers {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new McpConfigError(
      `${source} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const map =
    typeof raw === 'object' && raw !== null && 'mcpServers' in raw
      ? (raw as { mcpServers: unknown }).mcpServers
      : raw;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new McpConfigError(`${source} must map server names to servers (or have an "mcpServers" object)`);
  }
  const withTypes = Object.fromEntries(
    Object.entries(map).map(([name, server]) => [
      name,
      typeof server === 'object' && server !== null && !('type' in server)
        ? { type: 'stdio', ...server }
        : server,
    ]),
  );
  const parsed = McpServers.safeParse(withTypes);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`)
      .join('; ');
    throw new McpConfigError(`${source} has invalid MCP servers: ${problems}`);
  }
  return parsed.data;
}
