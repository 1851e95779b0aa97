import { describe, expect, it } from 'vitest';
import { McpConfigError, parseMcpConfig } from './mcp-config.js';

describe('parseMcpConfig', () => {
  it("reads Claude Code's .mcp.json shape and the bare map; a server without type is stdio", () => {
    const dotMcp = JSON.stringify({
      mcpServers: {
        fs: { command: 'mcp-fs', args: ['--root', '.'] },
        docs: { type: 'http', url: 'https://mcp.example.com/' },
      },
    });
    expect(parseMcpConfig(dotMcp, '.mcp.json')).toEqual({
      fs: { type: 'stdio', command: 'mcp-fs', args: ['--root', '.'] },
      docs: { type: 'http', url: 'https://mcp.example.com/' },
    });
    expect(parseMcpConfig('{"s":{"type":"sse","url":"https://x.example/sse"}}', 'f')).toEqual({
      s: { type: 'sse', url: 'https://x.example/sse' },
    });
  });

  it('names the file and the problem', () => {
    expect(() => parseMcpConfig('{nope', 'team.json')).toThrow(/team.json is not valid JSON/);
    expect(() => parseMcpConfig('[]', 'team.json')).toThrow(McpConfigError);
    expect(() => parseMcpConfig('{"bad name":{"command":"x"}}', 'team.json')).toThrow(
      /team.json has invalid MCP servers/,
    );
    expect(() => parseMcpConfig('{"h":{"type":"http","url":"not a url"}}', 'team.json')).toThrow(/h\.url/);
  });
});
