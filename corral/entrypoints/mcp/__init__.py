"""The MCP server (``/mcp``): Corral's API operations as Model Context Protocol tools.

``protocol`` speaks JSON-RPC over Streamable HTTP, ``tools`` generates the tools from the route registry,
``dispatch`` runs a tool call through the route's own middleware chain and handler, ``curated`` composes a few
higher-level tools, ``sessions`` signs the stateless session ids.
"""
