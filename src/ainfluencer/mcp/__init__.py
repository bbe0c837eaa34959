"""MCP server: AI assistants work for a character through the same services, scopes and review as people.

``server`` declares the tools, resources and prompts; ``calls`` runs every tool call through one gate
(token, scope, per-token rate limit, audit, errors an agent can act on); ``http`` serves it at ``/mcp``
(Streamable HTTP, bearer tokens) and the CLI's ``ainfluencer mcp`` serves it over stdio.
"""
